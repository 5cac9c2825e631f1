/** A part of a run's cursor range: after < cursor ≤ upTo. */
export interface CursorRange {
  after: bigint;
  upTo: bigint;
}

/**
 * Splits a run's range (from, to] into at most `parts` contiguous ranges holding about equal
 * bytes of `extents` (those of the range), each with at least one extent, for the live nodes to
 * export side by side. Cut only between extents: an extent is read by exactly one part.
 */
export function splitRange(from: bigint, to: bigint, extents: ReadonlyArray<{ cursor: bigint; sizeBytes: bigint }>, parts: number): CursorRange[] {
  const sorted = [...extents].sort((a, b) => (a.cursor < b.cursor ? -1 : a.cursor > b.cursor ? 1 : 0));
  const n = Math.min(parts, sorted.length);
  if (n <= 1) return [{ after: from, upTo: to }];
  const total = sorted.reduce((sum, e) => sum + e.sizeBytes, 0n);
  const ranges: CursorRange[] = [];
  let after = from;
  let bytes = 0n;
  for (let i = 0; i < sorted.length - 1 && ranges.length < n - 1; i++) {
    bytes += sorted[i]!.sizeBytes;
    const partsLeft = n - 1 - ranges.length;
    const extentsLeft = sorted.length - 1 - i;
    // Cut at the part's share of the bytes, or where each part still to come needs the extents that are left.
    if (bytes * BigInt(n) >= total * BigInt(ranges.length + 1) || extentsLeft === partsLeft) {
      ranges.push({ after, upTo: sorted[i]!.cursor });
      after = sorted[i]!.cursor;
    }
  }
  ranges.push({ after, upTo: to });
  return ranges;
}
