import { create, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { CallContext, ServiceClient } from "./service-impl.js";

const tracer = trace.getTracer("spillway-rpc");
const inProcess: CallContext = { internal: true, signal: new AbortController().signal };

type AnyHandler = (request: unknown, ctx: CallContext) => Promise<object> | AsyncIterable<object>;

/**
 * A client satisfied by a service in this process (the `all` target): the same typed
 * interface as the gRPC client, with messages built the same way, and no network.
 */
export function createLocalClient<S extends DescService>(service: S, impl: object): ServiceClient<S> {
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, AnyHandler>)[method.localName]!.bind(impl);
    const spanName = `${service.typeName}/${method.name}`;
    const input = (request: object) => create(method.input as DescMessage, request as never);
    const output = (message: object) => create(method.output as DescMessage, message as never);
    if (method.methodKind === "server_streaming") {
      methods[method.localName] = async function* (request: object) {
        for await (const message of handler(input(request), inProcess) as AsyncIterable<object>) yield output(message);
      };
    } else {
      methods[method.localName] = (request: object) =>
        tracer.startActiveSpan(spanName, { kind: SpanKind.INTERNAL }, async (span) => {
          try {
            return output(await (handler(input(request), inProcess) as Promise<object>));
          } catch (err) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
            throw err;
          } finally {
            span.end();
          }
        });
    }
  }
  return methods as ServiceClient<S>;
}
