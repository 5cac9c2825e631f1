import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { bindQueryTables } from "./table-binding.js";

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
