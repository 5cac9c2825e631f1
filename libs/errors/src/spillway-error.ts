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

const RETRYABLE: ReadonlySet<ErrorCode> = new Set([ErrorCode.unavailable, ErrorCode.resourceExhausted, ErrorCode.aborted]);
const PERMANENT: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.invalidArgument,
  ErrorCode.notFound,
  ErrorCode.failedPrecondition,
  ErrorCode.permissionDenied,
  ErrorCode.unauthenticated,
  ErrorCode.unimplemented,
]);

/**
 * A domain error whose message tells the caller what to fix. Its code decides what may be
 * done about it (STYLE "permanence decided by the error"): a retryable one may succeed as it
 * is, a permanent one not until a definition, a grant or the storage changes; the rest
 * (internal, cancelled, deadline exceeded) are neither.
 */
export class SpillwayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /** The request may succeed as it is, after a wait. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }

  /** Retrying will not help until something changes. */
  get permanent(): boolean {
    return PERMANENT.has(this.code);
  }

  /** `err` as a SpillwayError: itself, or INTERNAL with `err` as its cause. */
  static from(err: unknown): SpillwayError {
    if (err instanceof SpillwayError) return err;
    return new SpillwayError(ErrorCode.internal, err instanceof Error ? err.message : String(err), { cause: err });
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

/** Worth a retry with backoff: the request may succeed as it is. */
export function isRetryable(err: unknown): boolean {
  return err instanceof SpillwayError && err.retryable;
}

/** Not worth retrying until something changes; anything that is not a domain error is not known to be. */
export function isPermanent(err: unknown): boolean {
  return err instanceof SpillwayError && err.permanent;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
