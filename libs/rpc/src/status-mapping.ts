import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { redactSecrets, SpillwayError, ErrorCode } from "@spillway/errors";

/** A domain error as the gRPC status the edge sends; unknown errors become INTERNAL. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  if (err instanceof SpillwayError) {
    return { code: err.code, details: redactSecrets(err.message), metadata: new Metadata() };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: redactSecrets(`internal error: ${message}`), metadata: new Metadata() };
}

/** A gRPC status received by a client, as the domain error it stands for. */
export function fromServiceError(err: unknown): SpillwayError {
  if (err instanceof SpillwayError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e.code === "number") {
    return new SpillwayError(e.code as ErrorCode, e.details ?? e.message ?? "unknown error");
  }
  return new SpillwayError(ErrorCode.internal, err instanceof Error ? err.message : String(err));
}
