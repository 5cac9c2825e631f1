import { afterEach, describe, expect, it } from "vitest";
import { formatTable, limitFigure, notMeasured, percentile, ratioFigure } from "./report.js";
import { loadSettings, scaled } from "./settings.js";

describe("bench verdicts", () => {
  it("passes a ratio at or under the target and misses one above it", () => {
    expect(ratioFigure("1", "m", 13, 10, "s", 1.3).verdict).toBe("PASS");
    expect(ratioFigure("1", "m", 13.1, 10, "s", 1.3)).toMatchObject({ ratio: 1.31, verdict: "MISS", target: "≤ 1.3×" });
    expect(limitFigure("7", "m", 1025, "MiB", 1024, "≤ 1024 MiB").verdict).toBe("MISS");
    expect(notMeasured("5", "m", "≤ 1.5×", "why").verdict).toBe("NOT MEASURED");
  });

  it("takes nearest-rank percentiles", () => {
    const values = Array.from({ length: 200 }, (_, i) => 200 - i);
    expect(percentile(values, 50)).toBe(100);
    expect(percentile(values, 99)).toBe(198);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it("prints one aligned row per figure", () => {
    const table = formatTable([ratioFigure("1", "export", 9.02, 8.55, "s", 1.3), notMeasured("5", "ingest", "≤ 1.5×", "failed")]);
    const lines = table.split("\n");
    expect(lines).toHaveLength(4);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    expect(lines[2]!.split("|").map((c) => c.trim())).toEqual(["", "1", "export", "9.02 s", "8.55 s", "1.05×", "≤ 1.3×", "PASS", ""]);
    expect(lines[3]).toMatch(/NOT MEASURED/);
  });
});

describe("bench settings", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it("reads the measures, scale and size limit, and refuses what it cannot read", () => {
    Object.assign(process.env, { BENCH_ONLY: "1, 3", BENCH_SCALE: "0.01", BENCH_SIZE_LIMIT: "500MB" });
    const s = loadSettings();
    expect([...s.only]).toEqual([1, 3]);
    expect(scaled(s, 10_000_000)).toBe(100_000);
    expect(s.sizeLimit).toBe(500n * 1024n * 1024n);
    process.env.BENCH_ONLY = "11";
    expect(() => loadSettings()).toThrow(/'11' is not a measure/);
    process.env.BENCH_ONLY = "";
    process.env.BENCH_SCALE = "-1";
    expect(() => loadSettings()).toThrow(/BENCH_SCALE='-1' must be a positive number/);
  });
});
