import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { bindQueryTables, checkRewritten } from "./table-binding.js";

let instance: DuckDBInstance;
let connection: DuckDBConnection;

beforeAll(async () => {
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
});
afterAll(() => {
  connection.closeSync();
  instance.closeSync();
});

const table = { name: "T", columns: [{ name: "Id", type: "long" }], extentFiles: [] };

it("parses an export's query once however often it is bound, and checks it every time", async () => {
  const parses = vi.spyOn(connection, "run");
  const query = "SELECT Id FROM T WHERE Id > 41 -- bound twice";
  for (let i = 0; i < 2; i++) expect(await bindQueryTables(connection, query, [table])).toMatchObject({ tables: ["T"] });
  expect(parses.mock.calls.filter(([sql]) => String(sql).includes("json_serialize_sql"))).toHaveLength(1);
  // A parse kept is checked again: what was refused stays refused, and a table must still be given.
  for (let i = 0; i < 2; i++) await expect(bindQueryTables(connection, "DELETE FROM T", [table])).rejects.toThrow(/only a single read-only SELECT/);
  await expect(bindQueryTables(connection, query, [])).rejects.toThrow("query reads unknown table 'T'");
  parses.mockRestore();
});

it("binds tables inline as common table expressions, running no statement on the connection", async () => {
  const own = await instance.connect();
  const query = "SELECT Id FROM T WHERE Id > 41 -- bound inline";
  // Its parse kept (as an export's is after its first run), on another connection.
  await bindQueryTables(connection, query, [table], { inline: true });
  const run = vi.spyOn(own, "run");
  const bound = await bindQueryTables(own, query, [table], { inline: true });
  // Nothing ran, and no view is left on the connection.
  expect(run).not.toHaveBeenCalled();
  run.mockRestore();
  expect((await own.runAndReadAll("SELECT count(*) FROM duckdb_views() WHERE view_name = 'T'")).getRows()).toEqual([[0n]]);
  expect(bound.with).toMatch(/^WITH "T" AS NOT MATERIALIZED \(/);
  // With no extent the table is empty, but has its column and type.
  const reader = await own.runAndReadAll(`${bound.with}SELECT * FROM (${bound.sql}\n)`);
  expect(reader.columnNames()).toEqual(["Id"]);
  expect(reader.columnTypes().map(String)).toEqual(["BIGINT"]);
  expect(reader.getRows()).toEqual([]);
  own.closeSync();
});

it("refuses a query whose cursor functions, once replaced, uncover what the guard did not see", async () => {
  // What a splice that ended a nested comment too early would have made of
  // "SELECT cursor_current(/* /* */ ) AS c, (SELECT … FROM read_parquet(…)) AS leaked; COPY … -- */)".
  const uncovered = "SELECT '638000000000000001' AS c, (SELECT count(*) FROM read_parquet('/data/extents/other/*.parquet')) AS leaked; COPY (SELECT 1) TO '/data/x.parquet' -- */)";
  await expect(checkRewritten(connection, uncovered, ["T"])).rejects.toThrow(/query refused: with its cursor functions replaced, it is not a query Spillway runs \(query refused: only a single read-only SELECT is allowed/);
  await expect(checkRewritten(connection, "SELECT '1' AS c, (SELECT count(*) FROM read_parquet('/data/x.parquet')) AS leaked", ["T"])).rejects.toThrow(/table function 'read_parquet' is not allowed/);
  await expect(checkRewritten(connection, "SELECT Id FROM T, Secrets", ["T"])).rejects.toThrow("it reads 'Secrets', which it did not before");
  await expect(checkRewritten(connection, "SELECT cursor_current() AS c FROM T", ["T"])).rejects.toThrow("it still calls a cursor function");
  // What the splice makes of a query it read right passes.
  await expect(checkRewritten(connection, "SELECT '1' AS c, Id FROM t WHERE (\"__spillway_file\" IN ('a'))", ["T"])).resolves.toBeUndefined();
});

it("runs the nested-comment query as DuckDB reads it: the comment stays a comment", async () => {
  const bound = await bindQueryTables(connection, "SELECT cursor_current(/* /* */ ) AS c, (SELECT 1) AS leaked; SELECT 1 -- */) AS c", [table], { currentCursor: 638000000000000001n });
  expect(bound.sql).toBe("SELECT '638000000000000001' AS c");
});
