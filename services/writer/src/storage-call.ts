import { metrics } from "@opentelemetry/api";
import { ErrorCode, SpillwayError } from "@spillway/errors";

let storageErrors: ReturnType<ReturnType<typeof metrics.getMeter>["createCounter"]> | undefined;

/**
 * A storage request's failure as a domain error: a missing container or denied access is
 * permanent, the rest transient. Each is counted by kind (`storage.errors`, SPEC §8): the
 * HTTP status storage answered, or the network error when none came.
 */
export async function storageCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof SpillwayError) throw err;
    const e = err as { statusCode?: number; code?: string; message?: string };
    // Made at first use, not at import: a meter taken before the SDK started counts into nothing.
    storageErrors ??= metrics.getMeter("spillway-writer").createCounter("storage.errors", { description: "Storage requests of the writer that failed, by kind (HTTP status or network error)" });
    storageErrors.add(1, { kind: e.statusCode ? `http_${e.statusCode}` : (e.code ?? "other") });
    if (e.statusCode === 404) throw new SpillwayError(ErrorCode.failedPrecondition, `storage container not found: ${e.code ?? e.message}`);
    if (e.statusCode === 403 || e.statusCode === 401) throw new SpillwayError(ErrorCode.permissionDenied, `storage access denied: ${e.code ?? e.message}`);
    throw new SpillwayError(ErrorCode.unavailable, `storage write failed: ${e.message ?? String(err)}`);
  }
}
