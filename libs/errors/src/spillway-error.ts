import { status } from "@grpc/grpc-js";

/** The gRPC status codes a Spillway error may carry; the edge maps them 1:1. */
export const ErrorCode = {
  invalidArgument: status.INVALID_ARGUMENT,
  notFound: status.NOT_FOUND,
  alreadyExists: status.ALREADY_EXISTS,
  failedPrecondition: status.FAILED_PRECONDITION,
  permissionDenied: status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  resourceExhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  aborted: status.ABORTED,
  unimplemented: status.UNIMPLEMENTED,
  internal: status.INTERNAL,
  deadlineExceeded: status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A domain error whose message tells the caller what to fix. */
export class SpillwayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SpillwayError";
  }
}

export const invalidArgument = (message: string) => new SpillwayError(ErrorCode.invalidArgument, message);
export const notFound = (message: string) => new SpillwayError(ErrorCode.notFound, message);
export const alreadyExists = (message: string) => new SpillwayError(ErrorCode.alreadyExists, message);
export const failedPrecondition = (message: string) => new SpillwayError(ErrorCode.failedPrecondition, message);
export const permissionDenied = (message: string) => new SpillwayError(ErrorCode.permissionDenied, message);
export const unavailable = (message: string) => new SpillwayError(ErrorCode.unavailable, message);
export const unimplemented = (message: string) => new SpillwayError(ErrorCode.unimplemented, message);
export const internal = (message: string) => new SpillwayError(ErrorCode.internal, message);

/** Codes worth a retry with backoff: the request may succeed as it is. */
export function isRetryable(err: unknown): boolean {
  const code = err instanceof SpillwayError ? err.code : undefined;
  return code === ErrorCode.unavailable || code === ErrorCode.resourceExhausted || code === ErrorCode.aborted;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
