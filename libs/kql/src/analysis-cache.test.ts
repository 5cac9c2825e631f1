import { describe, expect, it } from "vitest";
import { AnalysisCache } from "./analysis-cache.js";
import type { KqlSchema } from "./kql-schema.js";

const events: KqlSchema = { database: "db", tables: [{ name: "Events", columns: [{ name: "Id", type: "long" }] }] };
const wider: KqlSchema = { database: "db", tables: [{ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] }] };

/** A cache over an analysis that counts how often it ran. */
function counting(max?: number, maxBytes?: number) {
  const runs: string[] = [];
  const cache = new AnalysisCache<{ text: string }>(max, maxBytes);
  const of = (text: string, schema = events) => cache.of(text, schema, () => (runs.push(text), { text }));
  return { runs, of };
}

describe("AnalysisCache", () => {
  it("analyzes a text once for the same schema, again for another schema", () => {
    const { runs, of } = counting();
    const first = of(".show continuous-exports");
    expect(of(".show continuous-exports")).toBe(first);
    expect(runs).toEqual([".show continuous-exports"]);
    // A table's columns changed: the text may now mean something else, or nothing.
    expect(of(".show continuous-exports", wider)).not.toBe(first);
    expect(runs).toHaveLength(2);
  });

  it("keeps the texts asked for most recently, up to its size", () => {
    const { runs, of } = counting(2);
    of("a");
    of("b");
    of("a");
    of("c");
    expect(runs).toEqual(["a", "b", "c"]);
    of("a");
    of("b");
    expect(runs).toEqual(["a", "b", "c", "b"]);
  });

  it("keeps no analysis that failed: the next ask analyzes again", () => {
    const cache = new AnalysisCache<{ text: string }>();
    expect(() => cache.of("T | bad", events, () => { throw new Error("parser failed"); })).toThrow("parser failed");
    expect(cache.of("T | bad", events, () => ({ text: "again" }))).toEqual({ text: "again" });
  });

  it("analyzes a long text every time: an .ingest inline carries its records and comes once", () => {
    const { runs, of } = counting();
    const ingest = `.ingest inline into table Events <|\n${"1\n".repeat(10_000)}`;
    of(ingest);
    of(ingest);
    expect(runs).toHaveLength(2);
  });

  it("holds analyses up to a size in all, as JSON: the least recent go first, and one larger than that is not kept", () => {
    // Each entry here: its key (a 44-character digest, a newline, the text) and `{"text":"…"}`.
    const { runs, of } = counting(256, 2 * (44 + 1 + 3 + 14));
    of("aaa");
    of("bbb");
    of("ccc");
    of("bbb");
    expect(runs).toEqual(["aaa", "bbb", "ccc"]);
    of("aaa");
    expect(runs).toEqual(["aaa", "bbb", "ccc", "aaa"]);
    const huge = "x".repeat(500);
    of(huge);
    of(huge);
    expect(runs.filter((t) => t === huge)).toHaveLength(2);
    // Nothing was evicted for it.
    of("aaa");
    expect(runs).toHaveLength(6);
  });
});
