import type { Caller } from "@spillway/auth";
import type { DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";

/** What a handler knows of its call beyond the request. */
export interface CallContext {
  /** Who called (admitted by the rpc server's access rules) and what they may do in the call's database. */
  readonly caller: Caller;
  readonly signal: AbortSignal;
}

type MethodImpl<M extends Pick<DescMethod, "input" | "output" | "methodKind">> = M["methodKind"] extends "unary"
  ? (request: MessageShape<M["input"]>, ctx: CallContext) => Promise<MessageInitShape<M["output"]>>
  : M["methodKind"] extends "server_streaming"
    ? (request: MessageShape<M["input"]>, ctx: CallContext) => AsyncIterable<MessageInitShape<M["output"]>>
    : M["methodKind"] extends "client_streaming"
      ? (requests: AsyncIterable<MessageShape<M["input"]>>, ctx: CallContext) => Promise<MessageInitShape<M["output"]>>
      : never;

/** The handlers of a service: one async function (or async generator) per RPC. */
export type ServiceImpl<S> = S extends GenService<infer T extends GenServiceMethods>
  ? { [K in keyof T]: MethodImpl<T[K]> }
  : never;

type MethodClient<M extends Pick<DescMethod, "input" | "output" | "methodKind">> = M["methodKind"] extends "unary"
  ? (request: MessageInitShape<M["input"]>) => Promise<MessageShape<M["output"]>>
  : M["methodKind"] extends "server_streaming"
    ? (request: MessageInitShape<M["input"]>) => AsyncIterable<MessageShape<M["output"]>>
    : M["methodKind"] extends "client_streaming"
      ? (requests: AsyncIterable<MessageInitShape<M["input"]>> | Iterable<MessageInitShape<M["input"]>>) => Promise<MessageShape<M["output"]>>
      : never;

/** A typed client of a service; satisfied in-process or over gRPC. */
export type ServiceClient<S> = S extends GenService<infer T extends GenServiceMethods>
  ? { [K in keyof T]: MethodClient<T[K]> }
  : never;

export type AnyService = DescService;
