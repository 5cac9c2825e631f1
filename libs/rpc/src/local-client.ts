import { create, fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { SpanKind } from "@opentelemetry/api";
import { SPILLWAY_CALLER } from "./call-guard.js";
import { traced } from "./grpc-client.js";
import { fromServiceError, toServiceError } from "./status-mapping.js";
import type { CallContext, ServiceClient } from "./service-impl.js";

const inProcess: CallContext = { caller: SPILLWAY_CALLER, signal: new AbortController().signal };

type AnyHandler = (request: unknown, ctx: CallContext) => Promise<object> | AsyncIterable<object>;

/**
 * A client satisfied by a service in this process (the `all` target): the same typed
 * interface as the gRPC client, and no network, but otherwise a call as gRPC makes it
 * (connect-es's router transport does the same): messages are serialized and parsed, so
 * neither side shares an object with the other or sees a field the wire would drop; errors
 * cross as a domain code and a redacted message, anything else as INTERNAL. So the `all`
 * target cannot behave differently from split processes.
 */
export function createLocalClient<S extends DescService>(service: S, impl: object): ServiceClient<S> {
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, AnyHandler>)[method.localName]!.bind(impl);
    const spanName = `${service.typeName}/${method.name}`;
    const input = (request: object) => overTheWire(method.input, create(method.input as DescMessage, request as never));
    // The handler may fail before it reads the stream; the caller's source is closed all the same.
    const withInputs = async (requests: AsyncIterable<object> | Iterable<object>, use: (inputs: AsyncIterable<object>) => Promise<object>) => {
      const source = Symbol.asyncIterator in requests ? requests[Symbol.asyncIterator]() : requests[Symbol.iterator]();
      async function* inputs() {
        for (let next = await source.next(); !next.done; next = await source.next()) yield input(next.value);
      }
      try {
        return await use(inputs());
      } finally {
        await source.return?.();
      }
    };
    const output = (message: object) => overTheWire(method.output, create(method.output as DescMessage, message as never));
    if (method.methodKind === "server_streaming") {
      methods[method.localName] = (request: object) => {
        // The handler sees the consumer stop as a cancel, as a gRPC handler sees its client go.
        const abort = new AbortController();
        const messages = (handler(input(request), { caller: SPILLWAY_CALLER, signal: abort.signal }) as AsyncIterable<object>)[Symbol.asyncIterator]();
        return cancellableStream(messages, output, abort);
      };
    } else if (method.methodKind === "client_streaming") {
      methods[method.localName] = (requests: AsyncIterable<object> | Iterable<object>) =>
        traced(spanName, SpanKind.INTERNAL, async () => output(await withInputs(requests, (inputs) => received(handler(inputs, inProcess) as Promise<object>))));
    } else {
      methods[method.localName] = (request: object) =>
        traced(spanName, SpanKind.INTERNAL, async () => output(await received(handler(input(request), inProcess) as Promise<object>)));
    }
  }
  return methods as ServiceClient<S>;
}

/**
 * A server stream whose `return()` (a consumer's break) cancels at once: an async
 * generator would wait for the handler's next message first, forever on a quiet stream.
 */
function cancellableStream(messages: AsyncIterator<object>, output: (m: object) => object, abort: AbortController): AsyncIterableIterator<object> {
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        const next = await messages.next();
        return next.done ? next : { done: false, value: output(next.value) };
      } catch (err) {
        throw asReceived(err);
      }
    },
    async return() {
      abort.abort();
      await messages.return?.();
      return { done: true, value: undefined };
    },
  };
}

/** The message as the other end of a gRPC call would read it. */
function overTheWire(schema: DescMessage, message: object): object {
  return fromBinary(schema, toBinary(schema, message as never));
}

/** The error a gRPC client would have received for `err`. */
function asReceived(err: unknown) {
  return fromServiceError(toServiceError(err));
}

async function received<T>(answer: Promise<T>): Promise<T> {
  try {
    return await answer;
  } catch (err) {
    throw asReceived(err);
  }
}
