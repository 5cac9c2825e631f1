import { describe, expect, it } from "vitest";
import { kustoJsonValue } from "./kusto-json-value.js";

describe("kustoJsonValue", () => {
  it("keeps long and decimal exact, as strings, and decimals without DuckDB's trailing zeros", () => {
    expect(kustoJsonValue("9007199254740993", "long")).toBe("9007199254740993");
    expect(kustoJsonValue("12.500000000000000000", "decimal")).toBe("12.5");
    expect(kustoJsonValue("3.000", "decimal")).toBe("3");
    expect(kustoJsonValue("-0.010", "decimal")).toBe("-0.01");
    expect(kustoJsonValue("100", "decimal")).toBe("100");
  });

  it("writes datetimes without trailing fraction zeros, and reals as numbers or named specials", () => {
    expect(kustoJsonValue("2024-01-02T03:04:05.1200000Z", "datetime")).toBe("2024-01-02T03:04:05.12Z");
    expect(kustoJsonValue("2024-01-02T03:04:05.0000000Z", "datetime")).toBe("2024-01-02T03:04:05Z");
    expect(kustoJsonValue("1.5", "real")).toBe(1.5);
    expect(kustoJsonValue("-inf", "real")).toBe("-Infinity");
    expect(kustoJsonValue(null, "string")).toBeNull();
  });
});
