import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CURSOR_COLUMN, cursorCalls, FILE_COLUMN, rewriteCursorFunctions, withoutCursorColumns } from "./cursor-functions.js";
import { asUserQueryError } from "./query-description.js";
import { bindQueryTables } from "./table-binding.js";

let instance: DuckDBInstance;
let c: DuckDBConnection;
let dir: string;

beforeAll(async () => {
  instance = await DuckDBInstance.create(":memory:");
  c = await instance.connect();
  dir = await mkdtemp(join(tmpdir(), "spillway-cursor-fn-"));
});
afterAll(async () => {
  c.closeSync();
  instance.closeSync();
  await rm(dir, { recursive: true, force: true });
});

/** The calls DuckDB's parser finds in `query`, as the binding finds them. */
async function callsOf(query: string) {
  const reader = await c.runAndReadAll(`SELECT json_serialize_sql('${query.replaceAll("'", "''")}') AS t`);
  return cursorCalls((JSON.parse(String(reader.getRows()[0]![0])) as { statements: unknown[] }).statements[0]);
}

/** Three extents: file a at cursor 5, b at 8, c at 200. */
const FILES = [
  { file: "a", cursor: 5n },
  { file: "b", cursor: 8n },
  { file: "c", cursor: 200n },
];
const rewrite = async (query: string, current = 42n) => rewriteCursorFunctions(query, await callsOf(query), current, FILES);
const F = `"${FILE_COLUMN}"`;

describe("rewriteCursorFunctions", () => {
  it("turns each call into a filter on the files it keeps, the current cursor, or the ingestion time", async () => {
    expect(await rewrite("SELECT * FROM T WHERE cursor_after('7') AND Id > 1")).toBe(`SELECT * FROM T WHERE (${F} IN ('b', 'c')) AND Id > 1`);
    expect(await rewrite("SELECT * FROM T WHERE CURSOR_BEFORE_OR_AT ( '8' )")).toBe(`SELECT * FROM T WHERE (${F} IN ('a', 'b'))`);
    // None kept: a comparison with NULL, which keeps no row.
    expect(await rewrite("SELECT * FROM T WHERE cursor_after('300')")).toBe(`SELECT * FROM T WHERE (${F} IN (NULL))`);
    expect(await rewrite("SELECT cursor_current() AS c", 638000000000000001n)).toBe("SELECT '638000000000000001' AS c");
    expect(await rewrite("SELECT ingestion_time() AS t FROM T")).toBe(`SELECT make_timestamp(("${CURSOR_COLUMN}" - 621355968000000000) // 10) AS t FROM T`);
    // '' is the beginning of time: after it, everything; at or before it, nothing.
    expect(await rewrite("SELECT * FROM T WHERE cursor_after('')")).toContain(`(${F} IN ('a', 'b', 'c'))`);
  });

  it("finds calls by byte offset past non-ASCII text, and skips strings and comments inside them", async () => {
    expect(await rewrite("SELECT 'héllo wörld' AS s FROM T WHERE cursor_after('7') AND s <> 'é'")).toBe(`SELECT 'héllo wörld' AS s FROM T WHERE (${F} IN ('b', 'c')) AND s <> 'é'`);
    expect(await rewrite("SELECT * FROM T WHERE cursor_after(/* ) */ '9' -- )\n) OR cursor_before_or_at('5')")).toBe(`SELECT * FROM T WHERE (${F} IN ('c')) OR (${F} IN ('a'))`);
  });

  it("reads comments and strings inside a call as DuckDB's parser does: nested block comments, either line break, dollar quotes", async () => {
    // DuckDB nests block comments: all of this is one comment, so the call is cursor_current() alone.
    const nested = "SELECT cursor_current(/* /* */ ) AS c, (SELECT 1) AS leaked; SELECT 1 -- */) AS c";
    expect(await rewrite(nested, 638000000000000001n)).toBe("SELECT '638000000000000001' AS c");
    // A carriage return ends a line comment: the call closes at the parenthesis after it.
    expect(await rewrite("SELECT * FROM T WHERE cursor_after('7' -- x\r) OR cursor_before_or_at('5')")).toBe(`SELECT * FROM T WHERE (${F} IN ('b', 'c')) OR (${F} IN ('a'))`);
    expect(await rewrite("SELECT * FROM T WHERE cursor_after($$7$$) OR cursor_before_or_at($t$5$t$)")).toBe(`SELECT * FROM T WHERE (${F} IN ('b', 'c')) OR (${F} IN ('a'))`);
    expect(await rewrite("SELECT * FROM T WHERE cursor_after(E'7') AND Id > 1")).toBe(`SELECT * FROM T WHERE (${F} IN ('b', 'c')) AND Id > 1`);
  });

  it("refuses a malformed cursor, one that is not a literal, and a wrong number of arguments", async () => {
    await expect(rewrite("SELECT * FROM T WHERE cursor_after('yesterday')")).rejects.toThrow("cursor_after(): 'yesterday' is not a cursor; a cursor is a string of digits");
    await expect(rewrite("SELECT * FROM T WHERE cursor_after(Key)")).rejects.toThrow("cursor_after() takes a cursor as a string literal");
    await expect(rewrite("SELECT * FROM T WHERE cursor_before_or_at('1', '2')")).rejects.toThrow("cursor_before_or_at() takes one argument, a cursor as a string literal, got 2");
    await expect(rewrite("SELECT cursor_current(1)")).rejects.toThrow("cursor_current() takes no argument, got 1");
  });
});

describe("cursor functions in a bound query", () => {
  let files: string[];

  beforeAll(async () => {
    files = [join(dir, "e1.parquet"), join(dir, "e2.parquet")];
    await c.run(`COPY (SELECT range AS Id FROM range(0, 1000)) TO '${files[0]}' (FORMAT parquet)`);
    await c.run(`COPY (SELECT range AS Id FROM range(1000, 1500)) TO '${files[1]}' (FORMAT parquet)`);
  });

  /** T's two extents have cursors 638000000000000100 and …200; D has no IngestionTime policy. */
  const tables = () => [
    { name: "T", columns: [{ name: "Id", type: "long" }], extentFiles: files, cursors: [638000000000000100n, 638000000000000200n] },
    { name: "D", columns: [{ name: "Id", type: "long" }], extentFiles: [files[0]!] },
  ];
  const rows = async (query: string) => {
    const bound = await bindQueryTables(c, query, tables(), { currentCursor: 638000000000000200n });
    const reader = await c.runAndReadAll(bound.cursorColumn ? withoutCursorColumns(bound.sql) : bound.sql);
    return { columns: reader.columnNames(), rows: reader.getRows() };
  };

  it("filters rows by their extent's cursor, reading only the extents it keeps", async () => {
    expect((await rows("SELECT count(*) AS n, min(Id) AS lo FROM T WHERE cursor_after('638000000000000150')")).rows).toEqual([[500n, 1000n]]);
    expect((await rows("SELECT count(*) AS n FROM T WHERE cursor_before_or_at('638000000000000150')")).rows).toEqual([[1000n]]);
    expect((await rows("SELECT count(*) AS n FROM T WHERE cursor_after('')")).rows).toEqual([[1500n]]);
    // The filter is on the file alone: DuckDB's plan shows it at the scan, where files are skipped.
    const bound = await bindQueryTables(c, "SELECT count(*) FROM T WHERE cursor_after('638000000000000150')", tables());
    const plan = String((await c.runAndReadAll(`EXPLAIN ${bound.sql}`)).getRows()[0]![1]);
    expect(plan).toMatch(/READ_PARQUET[\s\S]*Filters:[\s\S]*__spillway_file/);
  });

  it("reports a query's own mistake as DuckDB says it, not as a misplaced cursor function, though the statement names the cursor columns", async () => {
    const failed = async (query: string) => asUserQueryError(await rows(query).then(() => new Error("the query ran"), (err: unknown) => err));
    expect(await failed("SELECT nope FROM T WHERE cursor_after('638000000000000150')")).toMatchObject({ message: expect.stringMatching(/^query failed: .*"nope"/) });
    // Where the cursor column itself is what DuckDB cannot tell, the hint says what to write.
    expect(await failed("SELECT a.Id FROM T a JOIN T b ON a.Id = b.Id WHERE cursor_after('638000000000000150')")).toMatchObject({ message: expect.stringContaining("filter that table in a subquery first") });
  });

  it("answers the ingestion time and the current cursor, and never the cursor column itself", async () => {
    const answer = await rows("SELECT *, ingestion_time() AS at, cursor_current() AS now FROM T WHERE Id = 1200");
    expect(answer.columns).toEqual(["Id", "at", "now"]);
    expect(answer.rows[0]![2]).toBe("638000000000000200");
    // Cursor ticks are 100 ns since 0001-01-01: …200 ticks is a date in 2022.
    expect(String(answer.rows[0]![1])).toMatch(/^2022-/);
  });

  it("reads cursors right when a table has a column named filename", async () => {
    const named = join(dir, "named.parquet");
    await c.run(`COPY (SELECT 'x' AS filename, 1 AS Id) TO '${named}' (FORMAT parquet)`);
    const bound = await bindQueryTables(c, "SELECT filename, Id FROM F WHERE cursor_after('5')", [{ name: "F", columns: [{ name: "filename", type: "string" }, { name: "Id", type: "long" }], extentFiles: [named], cursors: [7n] }]);
    expect((await c.runAndReadAll(withoutCursorColumns(bound.sql))).getRows()).toEqual([["x", 1n]]);
  });

  it("refuses the forms where * would tell rows apart by their cursor, and keeps those where it cannot", async () => {
    for (const query of [
      "SELECT DISTINCT * FROM T WHERE cursor_after('')",
      "SELECT * FROM T WHERE cursor_after('') UNION SELECT * FROM T",
      "SELECT *, count(*) AS n FROM T WHERE cursor_after('') GROUP BY ALL",
    ]) {
      await expect(rows(query), query).rejects.toThrow("list the columns instead of *");
    }
    expect((await rows("SELECT count(*) FROM (SELECT * FROM T WHERE cursor_after('') UNION ALL SELECT * FROM T WHERE cursor_after(''))")).rows).toEqual([[3000n]]);
    expect((await rows("SELECT count(*) FROM (SELECT DISTINCT Id FROM T WHERE cursor_after(''))")).rows).toEqual([[1500n]]);
  });

  it("refuses cursor functions on a table without the IngestionTime policy", async () => {
    await expect(rows("SELECT * FROM D WHERE cursor_after('1')")).rejects.toThrow("'D' has no IngestionTime policy");
    // cursor_current() reads no row, so it needs no policy.
    expect((await rows("SELECT cursor_current() AS c FROM D LIMIT 1")).rows).toEqual([["638000000000000200"]]);
  });
});
