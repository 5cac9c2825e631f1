import { Client, credentials, Metadata, type ClientReadableStream } from "@grpc/grpc-js";
import { create, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { INTERNAL_KEY_HEADER } from "./rpc-server.js";
import { grpcServiceDefinition } from "./service-definition.js";
import type { ServiceClient } from "./service-impl.js";
import { fromServiceError } from "./status-mapping.js";
import { injectTraceContext } from "./trace-context.js";

const tracer = trace.getTracer("spillway-rpc");

export interface GrpcClientOptions {
  /** Sent so the peer treats this process as another Spillway service. */
  internalKey?: string;
}

/** A typed client of a service at `address`, propagating the active trace. */
export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  options: GrpcClientOptions = {},
): ServiceClient<S> & { close(): void } {
  const definition = grpcServiceDefinition(service);
  const client = new Client(address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
  });
  const metadataFor = () => {
    const metadata = new Metadata();
    if (options.internalKey) metadata.set(INTERNAL_KEY_HEADER, options.internalKey);
    injectTraceContext(metadata);
    return metadata;
  };
  const methods: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    const def = definition[method.localName]!;
    const spanName = `${service.typeName}/${method.name}`;
    const build = (request: object) => create(method.input as DescMessage, request as never);
    if (method.methodKind === "server_streaming") {
      methods[method.localName] = (request: object) =>
        streamFrom(() => client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, build(request), metadataFor()));
    } else {
      methods[method.localName] = (request: object) =>
        tracer.startActiveSpan(spanName, { kind: SpanKind.CLIENT }, async (span) => {
          try {
            return await new Promise((resolve, reject) =>
              client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, build(request), metadataFor(), (err, value) =>
                err ? reject(fromServiceError(err)) : resolve(value),
              ),
            );
          } catch (err) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
            throw err;
          } finally {
            span.end();
          }
        });
    }
  }
  return methods as ServiceClient<S> & { close(): void };
}

async function* streamFrom<T>(open: () => ClientReadableStream<T>): AsyncIterable<T> {
  const stream = context.with(context.active(), open);
  try {
    for await (const message of stream) yield message as T;
  } catch (err) {
    throw fromServiceError(err);
  } finally {
    stream.cancel();
  }
}
