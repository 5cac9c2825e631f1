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
import type { AccessRule } from "./access-rules.js";
import { SPILLWAY_CALLER, type Admission, type Caller, type CallGuard } from "./call-guard.js";
import type { CallContext } from "./service-impl.js";
import { toServiceError } from "./status-mapping.js";
import { extractTraceContext } from "./trace-context.js";

export const INTERNAL_KEY_HEADER = "x-spillway-internal-key";

const tracer = trace.getTracer("spillway-rpc");

type AnyHandler = (request: never, ctx: CallContext) => Promise<unknown> | AsyncIterable<unknown>;
type Output = DescService["methods"][number]["output"];

export interface RpcServerTls {
  cert: Buffer;
  key: Buffer;
  /** When set, every caller must present a certificate it signed (mutual TLS). */
  clientCa?: Buffer;
}

export interface RpcServerOptions {
  /** Callers presenting this key in INTERNAL_KEY_HEADER are other Spillway services. */
  internalKey: string;
  /** Admits public calls: authentication, roles, limits, audit. */
  guard: CallGuard;
  /** Serve TLS instead of plaintext. */
  tls?: RpcServerTls;
}

/** Anyone may call: health checks. */
const NOBODY: Caller = { principal: "anonymous", may: () => false };

/**
 * A grpc-js server that hosts protobuf-es services, health and reflection. Every RPC is
 * admitted by its service's access table before its handler runs: internal RPCs only to
 * other Spillway services, public ones through the call guard.
 */
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

  /** Hosts `service`; `access` must name a rule for every one of its methods. */
  addService<S extends DescService>(service: S, impl: object, access: Record<string, AccessRule<never>>): void {
    this.services.push(service);
    const handlers: UntypedServiceImplementation = {};
    for (const method of service.methods) {
      const handler = (impl as Record<string, AnyHandler>)[method.localName];
      if (!handler) throw new Error(`${service.typeName} has no handler for ${method.name}`);
      const rule = access[method.localName];
      if (!rule) throw new Error(`${service.typeName} declares no access rule for ${method.name}`);
      const rpc = `${service.name}/${method.name}`;
      const call: Call = { spanName: `${service.typeName}/${method.name}`, rpc, rule, handler: handler.bind(impl), output: method.output };
      handlers[method.localName] = (
        method.methodKind === "server_streaming"
          ? this.streamHandler(call)
          : method.methodKind === "client_streaming"
            ? this.unaryHandler(call, firstOfStream)
            : this.unaryHandler(call, async (c) => ({ request: (c as ServerUnaryCall<never, unknown>).request, first: (c as ServerUnaryCall<never, unknown>).request }))
      ) as UntypedServiceImplementation[string];
    }
    this.server.addService(grpcServiceDefinition(service), handlers);
  }

  /** Decides who the caller is and whether the call may run (SPEC §7). */
  private async admit(call: Call, metadata: Metadata, request: unknown): Promise<Admission> {
    const presented = metadata.get(INTERNAL_KEY_HEADER)[0];
    const fromSpillway = presented !== undefined && String(presented) === this.options.internalKey;
    const { rule, rpc } = call;
    if (rule === "open") return { caller: NOBODY, finish: async () => {} };
    if (fromSpillway) return { caller: SPILLWAY_CALLER, finish: async () => {} };
    if (rule === "internal") {
      throw new SpillwayError(ErrorCode.permissionDenied, `${rpc} is internal to Spillway and answers only other Spillway services`);
    }
    const authorization = metadata.get("authorization")[0];
    return this.options.guard.admit(rpc, rule, request, authorization === undefined ? undefined : String(authorization));
  }

  /** A handler answering once: to one request (unary) or to the stream of them (client streaming). */
  private unaryHandler(call: Call, requestOf: (c: OneAnswerCall, signal: AbortSignal) => Promise<{ request: unknown; first: unknown }>) {
    return (grpcCall: OneAnswerCall, callback: sendUnaryData<unknown>) => {
      const abort = new AbortController();
      grpcCall.on("cancelled", () => abort.abort());
      const parent = extractTraceContext(grpcCall.metadata);
      tracer.startActiveSpan(call.spanName, { kind: SpanKind.SERVER }, parent, async (span) => {
        let admission: Admission | undefined;
        try {
          const { request, first } = await requestOf(grpcCall, abort.signal);
          admission = await this.admit(call, grpcCall.metadata, first);
          const result = await (call.handler(request as never, { caller: admission.caller, signal: abort.signal }) as Promise<object>);
          await admission.finish(undefined);
          admission = undefined;
          callback(null, create(call.output, result as never));
        } catch (err) {
          await admission?.finish(err);
          const serviceError = toServiceError(err);
          span.setStatus({ code: SpanStatusCode.ERROR, message: serviceError.details });
          callback(serviceError);
        } finally {
          span.end();
        }
      });
    };
  }

  private streamHandler(call: Call) {
    return (grpcCall: ServerWritableStream<never, unknown>) => {
      const abort = new AbortController();
      grpcCall.on("cancelled", () => abort.abort());
      const parent = extractTraceContext(grpcCall.metadata);
      tracer.startActiveSpan(call.spanName, { kind: SpanKind.SERVER }, parent, async (span) => {
        let admission: Admission | undefined;
        try {
          admission = await this.admit(call, grpcCall.metadata, grpcCall.request);
          const messages = call.handler(grpcCall.request, { caller: admission.caller, signal: abort.signal }) as AsyncIterable<object>;
          for await (const message of messages) {
            if (abort.signal.aborted) break;
            if (!grpcCall.write(create(call.output, message as never))) {
              await new Promise((resolve) => grpcCall.once("drain", resolve));
            }
          }
          await admission.finish(undefined);
          admission = undefined;
          grpcCall.end();
        } catch (err) {
          await admission?.finish(err);
          const serviceError = toServiceError(err);
          span.setStatus({ code: SpanStatusCode.ERROR, message: serviceError.details });
          grpcCall.emit("error", serviceError);
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
    const { tls } = this.options;
    const credentials = tls
      ? ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCa !== undefined)
      : ServerCredentials.createInsecure();
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, credentials, (err, port) =>
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
    const open = Object.fromEntries(Health.methods.map((m) => [m.localName, "open" as const]));
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
    }, open);
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

interface Call {
  spanName: string;
  /** Service/Method, as errors and the audit log name it. */
  rpc: string;
  rule: AccessRule<never>;
  handler: AnyHandler;
  output: Output;
}

/**
 * A client stream's first message (which names what the call is about, so the call can be
 * admitted before the rest is read) and the whole stream, that message included.
 */
async function firstOfStream(call: OneAnswerCall, signal: AbortSignal): Promise<{ request: AsyncIterable<unknown>; first: unknown }> {
  const messages = requestsOf(call, signal)[Symbol.asyncIterator]();
  const head = await messages.next();
  async function* all() {
    if (head.done) return;
    yield head.value;
    for (let next = await messages.next(); !next.done; next = await messages.next()) yield next.value;
  }
  return { request: all(), first: head.done ? {} : head.value };
}

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
