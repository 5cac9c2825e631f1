import { ErrorCode, SpillwayError } from "@spillway/errors";
import type { DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";

/** What a handler knows of its call beyond the request. */
export interface CallContext {
  /** True when the caller proved it is another Spillway service (internal key, or in-process). */
  readonly internal: boolean;
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

/** Refuses a call to an internal RPC from anything but another Spillway service. */
export function requireInternal(ctx: CallContext, rpc: string): void {
  if (!ctx.internal) {
    throw new SpillwayError(ErrorCode.permissionDenied, `${rpc} is internal to Spillway and cannot be called by clients`);
  }
}
