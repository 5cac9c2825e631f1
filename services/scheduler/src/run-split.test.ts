import { describe, expect, it } from "vitest";
import { splitRange } from "./run-split.js";

const extents = (...sizes: number[]) => sizes.map((s, i) => ({ cursor: BigInt(10 * (i + 1)), sizeBytes: BigInt(s) }));

describe("splitRange", () => {
  it("keeps the range whole for one part, or one extent", () => {
    expect(splitRange(0n, 100n, extents(5, 5, 5), 1)).toEqual([{ after: 0n, upTo: 100n }]);
    expect(splitRange(0n, 100n, extents(5), 3)).toEqual([{ after: 0n, upTo: 100n }]);
    expect(splitRange(0n, 100n, [], 3)).toEqual([{ after: 0n, upTo: 100n }]);
  });

  it("cuts between extents into parts of about equal bytes that cover the range exactly", () => {
    expect(splitRange(0n, 100n, extents(10, 10, 10, 10, 10, 10), 3)).toEqual([
      { after: 0n, upTo: 20n },
      { after: 20n, upTo: 40n },
      { after: 40n, upTo: 100n },
    ]);
    expect(splitRange(5n, 95n, extents(60, 10, 10, 10, 10), 2)).toEqual([
      { after: 5n, upTo: 10n },
      { after: 10n, upTo: 95n },
    ]);
  });

  it("gives every part an extent, even when one extent holds nearly all the bytes", () => {
    const ranges = splitRange(0n, 100n, extents(1, 1, 1000), 3);
    expect(ranges).toEqual([
      { after: 0n, upTo: 10n },
      { after: 10n, upTo: 20n },
      { after: 20n, upTo: 100n },
    ]);
  });

  it("reads each extent in exactly one part, in any order given, for many shapes", () => {
    for (let count = 1; count <= 12; count++) {
      for (let parts = 1; parts <= 5; parts++) {
        const es = Array.from({ length: count }, (_, i) => ({ cursor: BigInt(1000 - i * 7), sizeBytes: BigInt(1 + ((i * 37) % 11)) }));
        const ranges = splitRange(0n, 2000n, es, parts);
        expect(ranges.length).toBe(Math.max(1, Math.min(parts, count)));
        expect(ranges[0]!.after).toBe(0n);
        expect(ranges.at(-1)!.upTo).toBe(2000n);
        for (let j = 1; j < ranges.length; j++) expect(ranges[j]!.after).toBe(ranges[j - 1]!.upTo);
        for (const e of es) expect(ranges.filter((r) => e.cursor > r.after && e.cursor <= r.upTo).length).toBe(1);
        for (const r of ranges) expect(es.some((e) => e.cursor > r.after && e.cursor <= r.upTo)).toBe(true);
      }
    }
  });
});
