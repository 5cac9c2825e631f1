import { describe, expect, it } from "vitest";
import { dotnetToStrftime, parsePathFormat } from "./path-format.js";

describe("parsePathFormat", () => {
  it("reads separators, partitions and datetime_pattern", () => {
    expect(parsePathFormat(`"day=" datetime_pattern("yyyyMMdd", Day) "/shard=" Shard`)).toEqual([
      { kind: "text", text: "day=" },
      { kind: "partition", name: "Day", datetimePattern: "yyyyMMdd" },
      { kind: "text", text: "/shard=" },
      { kind: "partition", name: "Shard" },
    ]);
    expect(parsePathFormat("Customer")).toEqual([{ kind: "partition", name: "Customer" }]);
  });
  it("refuses malformed formats, saying where", () => {
    expect(() => parsePathFormat(`"day=`)).toThrow(/unterminated string/);
    expect(() => parsePathFormat(`datetime_pattern("yyyy" Day)`)).toThrow(/expected ','/);
    expect(() => parsePathFormat(`"a" 5`)).toThrow(/expected a partition name at position 5/);
    expect(() => parsePathFormat(`datetime_pattern("yyyyQ", Day)`)).toThrow(/'Q' is not a supported format letter/);
    expect(() => parsePathFormat("  ")).toThrow(/empty/);
  });
});

describe("dotnetToStrftime", () => {
  it("maps .NET letters, quoted literals and braces", () => {
    expect(dotnetToStrftime("yyyy/MM/dd")).toBe("%Y/%m/%d");
    expect(dotnetToStrftime("yyyyMMddHHmmss")).toBe("%Y%m%d%H%M%S");
    expect(dotnetToStrftime("'year='yyyy'/month='M")).toBe("year=%Y/month=%-m");
    expect(dotnetToStrftime("year={yyyy}/month={MM}/day={d}")).toBe("year=%Y/month=%m/day=%-d");
    expect(dotnetToStrftime("{yyyy}%")).toBe("%Y%%");
  });
});
