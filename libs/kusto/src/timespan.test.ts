import { describe, expect, it } from "vitest";
import { parseTimespan, formatDurationMs } from "./timespan.js";
import { ticksFromEpochMs, dateFromCursor } from "./cursor-ticks.js";
import { validateName } from "./names.js";
import { normalizeColumns, isCompatibleType } from "./column-types.js";

describe("timespans", () => {
  it("parses unit and clock forms", () => {
    expect(parseTimespan("90s", "x")).toBe(90_000);
    expect(parseTimespan("1m", "x")).toBe(60_000);
    expect(parseTimespan("1.5h", "x")).toBe(5_400_000);
    expect(parseTimespan("250ms", "x")).toBe(250);
    expect(parseTimespan("00:05:00", "x")).toBe(300_000);
    expect(parseTimespan("1.02:00:00.5", "x")).toBe(93_600_500);
  });
  it("refuses what is not a timespan, naming the field", () => {
    expect(() => parseTimespan("soon", "intervalBetweenRuns")).toThrow(/intervalBetweenRuns: 'soon' is not a timespan/);
    expect(() => parseTimespan("5 parsecs", "x")).toThrow(/not a timespan/);
  });
  it("formats durations compactly", () => {
    expect(formatDurationMs(60_000)).toBe("1m");
    expect(formatDurationMs(1500)).toBe("1500ms");
    expect(formatDurationMs(0)).toBe("0s");
  });
});

describe("cursor ticks", () => {
  it("matches .NET ticks of a known instant", () => {
    // DateTime(2024,1,1,0,0,0,Utc).Ticks
    expect(ticksFromEpochMs(Date.UTC(2024, 0, 1))).toBe(638_396_640_000_000_000n);
    expect(dateFromCursor("638396640000000000")!.toISOString()).toBe("2024-01-01T00:00:00.000Z");
    expect(dateFromCursor("")).toBeUndefined();
  });
});

describe("names and columns", () => {
  it("accepts Kusto names and refuses others", () => {
    expect(validateName("table", "My_Table-1.v2")).toBe("My_Table-1.v2");
    expect(() => validateName("table", "bad name")).toThrow(/invalid table name 'bad name'/);
    expect(() => validateName("table", "x".repeat(257))).toThrow(/invalid table name/);
    expect(() => validateName("table", "")).toThrow(/table name is required/);
  });
  it("normalizes column types and refuses duplicates and unknown types", () => {
    expect(normalizeColumns([{ name: "a", type: "Int64" }], "T")).toEqual([{ name: "a", type: "long" }]);
    expect(() => normalizeColumns([{ name: "a", type: "blob" }], "T")).toThrow(/column 'a': unknown type 'blob'/);
    expect(() => normalizeColumns([{ name: "a", type: "int" }, { name: "A", type: "int" }], "T")).toThrow(/appears twice/);
  });
  it("knows which types widen", () => {
    expect(isCompatibleType("int", "long")).toBe(true);
    expect(isCompatibleType("long", "int")).toBe(false);
    expect(isCompatibleType("string", "datetime")).toBe(false);
  });
});
