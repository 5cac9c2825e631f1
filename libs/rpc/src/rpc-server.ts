import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { create, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { Health, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "@spillway/proto";
import { grpcServiceDefinition } from "./service-definition.js";
import type { CallContext } from "./service-impl.js";
import { toServiceError } from "./status-mapping.js";
import { extractTraceContext } from "./trace-context.js";

export const INTERNAL_KEY_HEADER = "x-spillway-internal-key";

const tracer = trace.getTracer("spillway-rpc");

type AnyHandler = (request: never, ctx: CallContext) => Promise<unknown> | AsyncIterable<unknown>;

export interface RpcServerOptions {
  /** Callers presenting this key in INTERNAL_KEY_HEADER are other Spillway services. */
  internalKey: string;
}

/** A grpc-js server that hosts protobuf-es services, health and reflection. */
export class RpcServer {
  private readonly server = new Server({
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
    // HTTP/2's 64 KiB default receive window makes a 13 MB Ingest payload wait for ~200
    // WINDOW_UPDATE round trips; a call's message is read whole anyway, so a larger window
    // costs no extra memory. Honoured through patches/@grpc+grpc-js (grpc/grpc-node#3058).
    "grpc-node.flow_control_window": 16 * 1024 * 1024,
  });
  private readonly services: DescService[] = [];
  private port = 0;

  constructor(private readonly options: RpcServerOptions) {}

  addService<S extends DescService>(service: S, impl: object): void {
    this.services.push(service);
    const handlers: UntypedServiceImplementation = {};
    for (const method of service.methods) {
      const handler = (impl as Record<string, AnyHandler>)[method.localName];
      if (!handler) throw new Error(`${service.typeName} has no handler for ${method.name}`);
      const spanName = `${service.typeName}/${method.name}`;
      const bound = handler.bind(impl);
      handlers[method.localName] = (
        method.methodKind === "server_streaming"
          ? this.streamHandler(spanName, bound, method.output)
          : method.methodKind === "client_streaming"
            ? this.unaryHandler(spanName, bound, method.output, requestsOf)
            : this.unaryHandler(spanName, bound, method.output, (call) => (call as ServerUnaryCall<never, unknown>).request)
      ) as UntypedServiceImplementation[string];
    }
    this.server.addService(grpcServiceDefinition(service), handlers);
  }

  private callContext(metadata: Metadata, signal: AbortSignal): CallContext {
    const presented = metadata.get(INTERNAL_KEY_HEADER)[0];
    return { internal: presented !== undefined && String(presented) === this.options.internalKey, signal };
  }

  /** A handler answering once: to one request (unary) or to the stream of them (client streaming). */
  private unaryHandler(spanName: string, handler: AnyHandler, output: DescService["methods"][number]["output"], requestOf: (call: OneAnswerCall, signal: AbortSignal) => unknown) {
    return (call: OneAnswerCall, callback: sendUnaryData<unknown>) => {
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      const parent = extractTraceContext(call.metadata);
      tracer.startActiveSpan(spanName, { kind: SpanKind.SERVER }, parent, async (span) => {
        try {
          const result = await (handler(requestOf(call, abort.signal) as never, this.callContext(call.metadata, abort.signal)) as Promise<object>);
          callback(null, create(output, result as never));
        } catch (err) {
          const serviceError = toServiceError(err);
          span.setStatus({ code: SpanStatusCode.ERROR, message: serviceError.details });
          callback(serviceError);
        } finally {
          span.end();
        }
      });
    };
  }

  private streamHandler(spanName: string, handler: AnyHandler, output: DescService["methods"][number]["output"]) {
    return (call: ServerWritableStream<never, unknown>) => {
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      const parent = extractTraceContext(call.metadata);
      tracer.startActiveSpan(spanName, { kind: SpanKind.SERVER }, parent, async (span) => {
        try {
          const messages = handler(call.request, this.callContext(call.metadata, abort.signal)) as AsyncIterable<object>;
          for await (const message of messages) {
            if (abort.signal.aborted) break;
            if (!call.write(create(output, message as never))) {
              await new Promise((resolve) => call.once("drain", resolve));
            }
          }
          call.end();
        } catch (err) {
          const serviceError = toServiceError(err);
          span.setStatus({ code: SpanStatusCode.ERROR, message: serviceError.details });
          call.emit("error", serviceError);
        } finally {
          span.end();
        }
      });
    };
  }

  /** Binds and starts serving, with grpc.health.v1 and server reflection (v1 and v1alpha). */
  async listen(address: string): Promise<number> {
    this.addHealth();
    new ReflectionService(reflectionPackage(this.services) as never).addToServer(this.server);
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    return this.port;
  }

  private addHealth(): void {
    const served = new Set(["", ...this.services.map((s) => s.typeName)]);
    const statusOf = (name: string) =>
      create(HealthCheckResponseSchema, {
        status: served.has(name) ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
      });
    this.addService(Health, {
      async check(request: { service: string }) {
        if (!served.has(request.service)) {
          throw Object.assign(new Error(`unknown service ${request.service}`), { code: status.NOT_FOUND });
        }
        return statusOf(request.service);
      },
      async list() {
        return { statuses: Object.fromEntries([...served].map((name) => [name, statusOf(name)])) };
      },
      async *watch(request: { service: string }, ctx: CallContext) {
        yield statusOf(request.service);
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      },
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

type OneAnswerCall = ServerUnaryCall<never, unknown> | ServerReadableStream<never, unknown>;

/**
 * A client stream's messages; a stream known to be cancelled fails rather than ends. That
 * is not enough on its own: grpc-js reports a client's cancel as the stream's end first and
 * as a cancel only after (grpc/grpc-node#2583), so a handler that must not act on part of a
 * stream needs the client to mark the last message (IngestStream's end_of_payload).
 */
async function* requestsOf(call: OneAnswerCall, signal: AbortSignal): AsyncIterable<unknown> {
  for await (const message of call as ServerReadableStream<never, unknown>) {
    if (signal.aborted) break;
    yield message;
  }
  if (signal.aborted) throw new SpillwayError(ErrorCode.cancelled, "the client cancelled the call");
}

/**
 * @grpc/reflection reads only `fileDescriptorProtos` of a proto-loader package
 * definition; protobuf-es gives us the same descriptors, dependencies included.
 */
function reflectionPackage(services: DescService[]): Record<string, { fileDescriptorProtos: Buffer[] }> {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  return Object.fromEntries(services.map((s) => [s.typeName, { fileDescriptorProtos }]));
}
