import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMaterialized, runMaterialized } from "./read-result.js";

describe("runMaterialized / readMaterialized", () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(":memory:", { threads: "1" });
    connection = await instance.connect();
  });
  afterAll(() => {
    connection.closeSync();
    instance.closeSync();
  });

  // DuckDB's chunks hold 2,048 rows: 5,000 rows come in three, and every one must be read.
  const MANY = "SELECT range AS n, 'r' || range AS name FROM range(5000)";

  it("reads every chunk of a result, in order, as node-api's own reader does", async () => {
    const ours = await runMaterialized(connection, MANY);
    const theirs = await connection.runAndReadAll(MANY);
    expect((await connection.run(MANY)).chunkCount).toBeGreaterThan(2);
    expect(ours.getRows()).toEqual(theirs.getRows());
    expect(ours.getRowObjects()).toEqual(theirs.getRowObjects());
    expect(ours.getRows()).toHaveLength(5000);
    expect(ours.getRowObjects().at(-1)).toEqual({ n: 4999n, name: "r4999" });
  });

  it("names repeated columns as node-api does, and reads an empty result as no rows", async () => {
    const sql = "SELECT 1 AS a, 2 AS a, 3 AS b";
    expect((await runMaterialized(connection, sql)).getRowObjects()).toEqual((await connection.runAndReadAll(sql)).getRowObjects());
    expect((await runMaterialized(connection, "SELECT 1 AS a WHERE false")).getRowObjects()).toEqual([]);
  });

  it("reads a prepared statement's result", async () => {
    const statement = await connection.prepare("SELECT n FROM range(3) t(n) WHERE n >= $1");
    statement.bindInteger(1, 1);
    expect(readMaterialized(await statement.run()).getRows()).toEqual([[1n], [2n]]);
    statement.destroySync();
  });

  it("refuses a streaming result rather than read it as empty", async () => {
    await expect(async () => readMaterialized((await connection.stream(MANY)) as never)).rejects.toThrow("the result is streaming");
  });
});
