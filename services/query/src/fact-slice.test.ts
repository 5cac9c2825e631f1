import { describe, expect, it } from "vitest";
import { sliceEnd } from "./fact-slice.js";

const extent = (cursor: number, sizeBytes: number) => ({ cursor: String(cursor), sizeBytes: BigInt(sizeBytes) });

describe("sliceEnd", () => {
  it("cuts after the extent, oldest cursor first, at which the slice reaches its bytes", () => {
    // Listed out of order, as several fact tables' extents are.
    expect(sliceEnd([extent(30, 40), extent(10, 60), extent(20, 50), extent(40, 10)], 100n)).toBe(20n);
    // At least one extent, however large.
    expect(sliceEnd([extent(10, 500), extent(20, 1)], 100n)).toBe(10n);
  });

  it("does not cut when what is left after the cut would be nothing, or when there is no limit", () => {
    expect(sliceEnd([extent(10, 60), extent(20, 50)], 100n)).toBeUndefined();
    expect(sliceEnd([extent(10, 60), extent(20, 50)], 1000n)).toBeUndefined();
    expect(sliceEnd([extent(10, 60), extent(20, 50)], 0n)).toBeUndefined();
    expect(sliceEnd([], 100n)).toBeUndefined();
  });

  it("keeps extents committed under one cursor in the same slice", () => {
    expect(sliceEnd([extent(10, 60), extent(10, 60), extent(20, 1)], 100n)).toBe(10n);
    expect(sliceEnd([extent(10, 60), extent(20, 30), extent(20, 30), extent(30, 1)], 100n)).toBe(20n);
  });
});
