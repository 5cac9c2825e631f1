import { describe, expect, it } from "vitest";
import { queryLanguage } from "./query-language.js";

describe("queryLanguage", () => {
  it("takes sql (also when empty) and kql, in any case", () => {
    expect(["", "sql", "SQL", "kql", "Kql"].map((v) => queryLanguage(v))).toEqual(["sql", "sql", "sql", "kql", "kql"]);
  });

  it("refuses any other language, naming the ones it takes", () => {
    expect(() => queryLanguage("python")).toThrow(/^queryLanguage 'python' is not supported; use sql or kql$/);
  });

  it("names what the query belongs to in its refusal", () => {
    expect(() => queryLanguage("python", "continuous export 'E'")).toThrow(/^continuous export 'E': queryLanguage 'python' is not supported; use sql or kql$/);
  });
});
