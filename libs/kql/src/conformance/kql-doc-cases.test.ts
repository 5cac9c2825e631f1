// Cases the Kusto corpus lacks (its examples for these read the StormEvents sample
// database). Each names the documentation page its expected answer comes from: either a
// value the page shows, or the page's stated rule applied to a small inline table.
import type { DuckDBConnection } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKqlEngine, type KqlEngine } from "../kql-engine.js";
import { openCaseDatabase, runCase, type ConformanceCase } from "./case-runner.js";

const STRING_OPERATORS = "https://learn.microsoft.com/en-us/azure/data-explorer/kusto/query/datatypes-string-operators";

interface DocCase {
  source: string;
  query: string;
  columns: Array<{ name: string; type: string }>;
  rows: unknown[][];
  ordered?: boolean;
  tables?: ConformanceCase["tables"];
}

const fruit: ConformanceCase["tables"] = [{
  name: "Fruit",
  columns: [{ name: "Name", type: "string" }, { name: "Color", type: "string" }, { name: "Weight", type: "long" }],
  rows: [["Apple", "Red", 150], ["Banana", "Yellow", 120], ["Cherry", "Red", 10], ["Lemon", "Yellow", 100], ["Plum", "", 60]],
}];

// The string-operator table's "Example (yields true)" column: every one of these is true.
const yieldsTrue = [
  `"aBc" == "aBc"`, `"abc" != "ABC"`, `"abc" =~ "ABC"`, `"aBc" !~ "xyz"`,
  `"North America" has "america"`, `"North America" !has "amer"`, `"North America" has_cs "America"`, `"North America" !has_cs "amer"`,
  `"FabriKam" contains "BRik"`, `"Fabrikam" !contains "xyz"`, `"FabriKam" contains_cs "Kam"`, `"Fabrikam" !contains_cs "Kam"`,
  `"Fabrikam" startswith "fab"`, `"Fabrikam" !startswith "kam"`, `"Fabrikam" startswith_cs "Fab"`, `"Fabrikam" !startswith_cs "fab"`,
  `"Fabrikam" endswith "Kam"`, `"Fabrikam" !endswith "brik"`, `"Fabrikam" endswith_cs "kam"`, `"Fabrikam" !endswith_cs "brik"`,
  `"Fabrikam" matches regex "b.*k"`,
  `"123" in ("123", "345", "abc")`, `"123" !in ("345", "abc")`, `"abc" in~ ("123", "345", "ABC")`, `"bca" !in~ ("123", "345", "abc")`,
];

const cases: DocCase[] = [
  ...yieldsTrue.map((e): DocCase => ({ source: STRING_OPERATORS, query: `print r = ${e}`, columns: [{ name: "r", type: "bool" }], rows: [[true]] })),
  // The same page's term example: terms are maximal runs of letters and digits.
  {
    source: STRING_OPERATORS,
    query: `print t = "Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun" | project a = t has "c1db", b = t has "KustoExplorerQueryRun", c = t has "Explorer", d = t has "ad67d136-c1db"`,
    columns: ["a", "b", "c", "d"].map((name) => ({ name, type: "bool" })),
    rows: [[true, true, false, true]],
  },
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/substring-function",
    query: `print a = substring("123456", 1), b = substring("123456", 2, 2), c = substring("ABCD", 0, 2)`,
    columns: ["a", "b", "c"].map((name) => ({ name, type: "string" })),
    rows: [["23456", "34", "AB"]],
  },
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/tolower-function",
    query: `print r = tolower("Hello")`,
    columns: [{ name: "r", type: "string" }],
    rows: [["hello"]],
  },
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/isempty-function",
    query: `print a = isempty(""), b = isempty("x"), c = isempty(parse_json("")), d = isempty(parse_json("[]")), e = isempty(parse_json("{}"))`,
    columns: ["a", "b", "c", "d", "e"].map((name) => ({ name, type: "bool" })),
    rows: [[true, false, true, false, false]],
  },
  // "distinct: produces a table with the distinct combination of the provided columns."
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/distinct-operator",
    tables: fruit,
    query: "Fruit | distinct Color",
    columns: [{ name: "Color", type: "string" }],
    rows: [["Red"], ["Yellow"], [""]],
  },
  // "take: return up to the specified number of rows" (which rows is not promised).
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/take-operator",
    tables: fruit,
    query: "Fruit | take 2 | count",
    columns: [{ name: "Count", type: "long" }],
    rows: [[2]],
  },
  // "top: returns the first N records sorted by the specified column" (desc by default).
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/top-operator",
    tables: fruit,
    query: "Fruit | top 2 by Weight | project Name, Weight",
    columns: [{ name: "Name", type: "string" }, { name: "Weight", type: "long" }],
    rows: [["Apple", 150], ["Banana", 120]],
    ordered: true,
  },
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/min-aggregation-function",
    tables: fruit,
    query: "Fruit | summarize Lightest = min(Weight), Heaviest = max(Weight) by Color",
    columns: [{ name: "Color", type: "string" }, { name: "Lightest", type: "long" }, { name: "Heaviest", type: "long" }],
    rows: [["Red", 10, 150], ["Yellow", 100, 120], ["", 60, 60]],
  },
  // The page's example shows hash() of both strings (rows compare longs to 15 digits; the
  // exact bits are checked in xxhash64-sql.test.ts).
  {
    source: "https://learn.microsoft.com/en-us/kusto/query/hash-combine-function",
    query: `print value1 = "Hello", value2 = "World" | extend h1 = hash(value1), h2 = hash(value2)`,
    columns: [{ name: "value1", type: "string" }, { name: "value2", type: "string" }, { name: "h1", type: "long" }, { name: "h2", type: "long" }],
    rows: [["Hello", "World", "753694413698530628", "1846988464401551951"]],
  },
];

describe("KQL cases from Kusto's documentation", () => {
  let engine: KqlEngine;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    engine = createKqlEngine();
    connection = await openCaseDatabase();
  });
  afterAll(async () => {
    connection?.closeSync();
    await engine?.close();
  });

  it.each(cases.map((c, i) => [`${i}: ${c.query.slice(0, 70)}`, c] as const))("%s", async (_, c) => {
    const outcome = await runCase(engine, connection, {
      id: `doc_${cases.indexOf(c)}`, tables: c.tables ?? [], query: c.query, doc_source: c.source,
      expected: { columns: c.columns, rows: c.rows, ordered: c.ordered ?? false },
    });
    expect(outcome, `${c.source}\n${c.query}`).toEqual({ kind: "pass" });
  });
});
