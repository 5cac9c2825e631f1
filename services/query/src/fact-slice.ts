/**
 * Where a query limited to `maxBytes` of fact extents stops (ExecuteToSpoolRequest.max_fact_bytes):
 * the cursor of the extent, oldest first, at which the extents so far reach `maxBytes`; undefined
 * when there is no limit or the extents after that one would be none. Extents are whole: a run
 * that queries the rest after this cursor reads each of them exactly once.
 */
export function sliceEnd(extents: ReadonlyArray<{ cursor: string; sizeBytes: bigint }>, maxBytes: bigint): bigint | undefined {
  if (maxBytes <= 0n) return undefined;
  // Extents committed together share a cursor: they are cut together.
  const bytesAt = new Map<bigint, bigint>();
  for (const e of extents) bytesAt.set(BigInt(e.cursor), (bytesAt.get(BigInt(e.cursor)) ?? 0n) + e.sizeBytes);
  const cursors = [...bytesAt.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let bytes = 0n;
  for (const cursor of cursors.slice(0, -1)) {
    bytes += bytesAt.get(cursor)!;
    if (bytes >= maxBytes) return cursor;
  }
  return undefined;
}
