import { Client, credentials, Metadata, type ClientReadableStream, type ClientWritableStream, type ServiceError } from "@grpc/grpc-js";
import { create, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { errorMessage, redactSecrets } from "@spillway/errors";
import { INTERNAL_KEY_HEADER } from "./rpc-server.js";
import { grpcServiceDefinition } from "./service-definition.js";
import type { ServiceClient } from "./service-impl.js";
import { fromServiceError } from "./status-mapping.js";
import { injectTraceContext } from "./trace-context.js";

const tracer = trace.getTracer("spillway-rpc");

export interface GrpcClientOptions {
  /** Sent so the peer treats this process as another Spillway service. */
  internalKey?: string;
  /** Dial with TLS: `ca` checks the server (default: the system's roots); cert and key are this side's, for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** A bearer token sent with every call (`authorization` metadata). */
  token?: string;
  /** Spread calls over every address of the target (e.g. `ipv4:host:1,host:2`), skipping those that are down. */
  roundRobin?: boolean;
}

/** A typed client of a service at `address`, propagating the active trace. */
export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  options: GrpcClientOptions = {},
): ServiceClient<S> & { close(): void } {
  const definition = grpcServiceDefinition(service);
  const { tls } = options;
  const channelCredentials = tls ? credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : credentials.createInsecure();
  const client = new Client(address, channelCredentials, {
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
    ...(options.roundRobin ? { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } : {}),
  });
  const metadataFor = () => {
    const metadata = new Metadata();
    if (options.internalKey) metadata.set(INTERNAL_KEY_HEADER, options.internalKey);
    if (options.token) metadata.set("authorization", `Bearer ${options.token}`);
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
    } else if (method.methodKind === "client_streaming") {
      methods[method.localName] = (requests: AsyncIterable<object> | Iterable<object>) =>
        traced(spanName, SpanKind.CLIENT, () =>
          sendStream(requests, build, (callback) => client.makeClientStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, metadataFor(), callback)),
        );
    } else {
      methods[method.localName] = (request: object) =>
        traced(spanName, SpanKind.CLIENT, () =>
          new Promise((resolve, reject) =>
            client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, build(request), metadataFor(), (err, value) =>
              err ? reject(fromServiceError(err)) : resolve(value),
            ),
          ),
        );
    }
  }
  return methods as ServiceClient<S> & { close(): void };
}

/** Runs `call` in a span of its own that records a failure. */
export function traced<T>(spanName: string, kind: SpanKind, call: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(spanName, { kind }, async (span) => {
    try {
      return await call();
    } catch (err) {
      // Storage errors can quote request URLs, SAS signatures included.
      span.setStatus({ code: SpanStatusCode.ERROR, message: redactSecrets(errorMessage(err)) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Writes a client stream one message at a time: each is serialized and handed to HTTP/2
 * (whose window bounds what is in flight) before the next is taken from the source, so a
 * large payload is never all in memory and a source may reuse its buffers. A source that
 * fails cancels the call: the server must not take a partial stream as the whole.
 */
function sendStream<T>(
  requests: AsyncIterable<object> | Iterable<object>,
  build: (request: object) => object,
  open: (callback: (err: ServiceError | null, value?: T) => void) => ClientWritableStream<object>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const call = open((err, value) => {
      settled = true;
      if (err) reject(fromServiceError(err));
      else resolve(value as T);
    });
    // A call that ends (an early error from the server) never calls back pending writes.
    const written = (request: object) =>
      new Promise<void>((done) => {
        const finish = () => {
          call.off("status", finish);
          done();
        };
        call.on("status", finish);
        call.write(build(request), finish);
      });
    void (async () => {
      try {
        for await (const request of requests) {
          if (settled) return;
          await written(request);
        }
        call.end();
      } catch (err) {
        settled = true;
        call.cancel();
        reject(err);
      }
    })();
  });
}

/** A server stream whose `return()` (a consumer's break) cancels the call at once, even while no message comes. */
function streamFrom<T>(open: () => ClientReadableStream<T>): AsyncIterableIterator<T> {
  const stream = context.with(context.active(), open);
  const messages = stream[Symbol.asyncIterator]() as AsyncIterator<T>;
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        return await messages.next();
      } catch (err) {
        stream.cancel();
        throw fromServiceError(err);
      }
    },
    async return() {
      stream.cancel();
      // The cancel ends the stream with an error its reader no longer wants.
      await messages.return?.().catch(() => undefined);
      return { done: true, value: undefined };
    },
  };
}
