// The database cursor is a commit time in 100-ns ticks since 0001-01-01 UTC (SPEC §2),
// the same number .NET's DateTime.Ticks gives, so cursors read as ingestion times.
import { invalidArgument } from "@spillway/errors";

/** 1970-01-01 in ticks. */
export const UNIX_EPOCH_TICKS = 621_355_968_000_000_000n;
const TICKS_PER_MS = 10_000n;

export function ticksFromEpochMs(ms: number): bigint {
  return UNIX_EPOCH_TICKS + BigInt(Math.floor(ms)) * TICKS_PER_MS;
}

export function epochMsFromTicks(ticks: bigint): number {
  return Number((ticks - UNIX_EPOCH_TICKS) / TICKS_PER_MS);
}

/**
 * How long, in seconds at `now`, the record of `oldestCursor` has waited since it was
 * ingested: an export's lateness (SPEC §8), 0 when nothing waits ('' or undefined).
 */
export function latenessSeconds(oldestCursor: string | undefined, now: number): number {
  return oldestCursor ? Math.max(0, (now - epochMsFromTicks(BigInt(oldestCursor))) / 1000) : 0;
}

/** The cursor as the ingestion time it stands for; the empty cursor is the beginning of time. */
export function dateFromCursor(cursor: string): Date | undefined {
  if (!cursor) return undefined;
  return new Date(epochMsFromTicks(BigInt(cursor)));
}

export function parseCursor(cursor: string, what: string): bigint {
  if (cursor === "") return 0n;
  if (!/^\d{1,19}$/.test(cursor)) throw invalidArgument(`${what}: '${cursor}' is not a cursor`);
  return BigInt(cursor);
}

/** The lower of two cursors. */
export function minCursor(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** A cursor as the API writes it: cursor 0 is "before anything was ingested", the empty cursor. */
export function cursorText(cursor: bigint): string {
  return cursor === 0n ? "" : cursor.toString();
}
