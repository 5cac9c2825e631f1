import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { closeSharedKqlEngine, KqlError } from "@spillway/kql";
import { ONE_COLUMN_PER_TYPE } from "../../../test/support/kusto-columns.js";
import { translateKqlQuery, type KqlQuery } from "./kql-query.js";
import { QueryEngine, type TableBinding } from "./query-engine.js";

// KQL through the real parser and translator, then the query engine's ad-hoc path, as the
// Query handler runs it.

let dataDir: string;
let engine: QueryEngine;
let bindings: TableBinding[];

const HOSTS = [{ name: "Host", type: "string" }, { name: "Owner", type: "string" }];
const TABLES = [{ name: "T", columns: ONE_COLUMN_PER_TYPE }, { name: "Hosts", columns: HOSTS }];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "spillway-kql-query-"));
  engine = await QueryEngine.create(dataDir);
  const utf8 = (text: string) => new TextEncoder().encode(text);
  const t = await engine.ingest(
    "csv",
    utf8(
      [
        `true,1,9000000000123456789,1.5,12.5,alpha,2024-01-01T02:00:00+02:00,1.02:03:04.5,0F8FAD5B-D9CB-469F-A165-70867728950E,"{""a"":[1,2]}"`,
        `false,-2,-3,-0.25,0.1,beta,2024-06-30 12:34:56.789,-00:00:01,00000000-0000-0000-0000-000000000000,"""text"""`,
        `,3,,,,alpha,,,,`,
      ].join("\n"),
    ),
    ONE_COLUMN_PER_TYPE,
    false,
    "extents/db/T/e1.parquet",
  );
  const hosts = await engine.ingest("csv", utf8("alpha,ann\nbeta,bob\n"), HOSTS, false, "extents/db/Hosts/e1.parquet");
  bindings = [
    { name: "T", columns: ONE_COLUMN_PER_TYPE, extentPaths: [t.path] },
    { name: "Hosts", columns: HOSTS, extentPaths: [hosts.path] },
  ];
});

afterAll(async () => {
  engine.close();
  await closeSharedKqlEngine();
  await rm(dataDir, { recursive: true, force: true });
});

async function run(q: KqlQuery): Promise<{ columns: Array<{ name: string; type: string }>; rows: unknown[][] }> {
  const result = { columns: [] as Array<{ name: string; type: string }>, rows: [] as unknown[][] };
  for await (const batch of q.results(engine.query(q.sql, bindings))) {
    if (batch.columns) result.columns = batch.columns;
    if (batch.rows) result.rows.push(...batch.rows);
  }
  return result;
}

async function refusal(text: string): Promise<KqlError> {
  const err = await translateKqlQuery(text, "db", TABLES).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KqlError);
  expect((err as KqlError).code).toBe(ErrorCode.invalidArgument);
  return err as KqlError;
}

describe("a KQL query on the ad-hoc path", () => {
  it("answers with the parser's columns and types, values as Kusto's JSON shows them", async () => {
    const q = await translateKqlQuery("T | where isnotnull(b) | order by i asc", "db", TABLES);
    expect(q.tables).toEqual(["T"]);
    const result = await run(q);
    expect(result.columns).toEqual(ONE_COLUMN_PER_TYPE);
    expect(result.rows).toEqual([
      // long stays exact as a decimal string; timespans carry 7 fraction digits; dynamic is JSON, not its text.
      [false, -2, "-3", -0.25, expect.any(String), "beta", "2024-06-30T12:34:56.789Z", "-00:00:01", "00000000-0000-0000-0000-000000000000", "text"],
      [true, 1, "9000000000123456789", 1.5, expect.any(String), "alpha", "2024-01-01T00:00:00Z", "1.02:03:04.5000000", "0f8fad5b-d9cb-469f-a165-70867728950e", { a: [1, 2] }],
    ]);
    expect(result.rows.map((r) => Number(r[4]))).toEqual([0.1, 12.5]);
  });

  it("keeps nulls null and the order the query sorts by", async () => {
    const result = await run(await translateKqlQuery("T | project i, l, dt, dyn | order by i desc", "db", TABLES));
    expect(result.rows.map((r) => r[0])).toEqual([3, 1, -2]);
    expect(result.rows[0]).toEqual([3, null, null, null]);
  });

  it("joins and summarizes with Kusto's semantics", async () => {
    const q = await translateKqlQuery("T | join kind=inner Hosts on $left.s == $right.Host | summarize n = count(), total = sum(i) by Owner | order by Owner asc", "db", TABLES);
    expect(q.tables.sort()).toEqual(["Hosts", "T"]);
    expect(await run(q)).toEqual({
      columns: [{ name: "Owner", type: "string" }, { name: "n", type: "long" }, { name: "total", type: "long" }],
      rows: [["ann", "2", "4"], ["bob", "1", "-2"]],
    });
  });

  it("translates to SQL the query engine's guard accepts, reading the tables the query names", async () => {
    const q = await translateKqlQuery("T | where s has 'alpha' | join kind=leftouter Hosts on $left.s == $right.Host | project s, Owner", "db", TABLES);
    expect((await engine.check(q.sql)).tables.sort()).toEqual(["Hosts", "T"]);
  });

  it("refuses a syntax error with the parser's code, line and column", async () => {
    const err = await refusal("T\n| where i == ");
    expect(err.diagnostics[0]).toMatchObject({ line: 2, code: expect.stringMatching(/^KS/) });
    expect(err.message).toMatch(/^KS\d+ at line 2, column \d+: /);
  });

  it("refuses an unknown column, naming it and where it is", async () => {
    const err = await refusal("T | project Nope");
    expect(err.message).toMatch(/at line 1, column 13: .*Nope/);
  });

  it("refuses what Spillway does not translate, naming it and where it is", async () => {
    const err = await refusal("T | sample 3");
    expect(err.diagnostics[0]).toMatchObject({ code: "SPW-KQL-UNSUPPORTED", line: 1, column: 5 });
    expect(err.message).toContain("sample");
  });

  it("refuses a way out of the sandbox", async () => {
    const err = await refusal("externaldata (x:string) [h@'https://example.com/a.csv']");
    expect(err.message).toContain("externaldata");
  });

  it("refuses an empty query", async () => {
    await expect(translateKqlQuery("  ", "db", TABLES)).rejects.toThrow("query is required");
  });
});
