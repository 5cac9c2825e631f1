import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { encodeArtifacts, QueryDescriber } from "@spillway/duck";
import { ErrorCode, invalidArgument } from "@spillway/errors";
import { ROWS_SPOOL_FILE } from "@spillway/storage";
import { QueryEngine, type TableBinding } from "./query-engine.js";
import type { IngestFormat } from "./payload-ingestion.js";
import { ONE_COLUMN_PER_TYPE } from "../../../test/support/kusto-columns.js";

const COLUMNS = ONE_COLUMN_PER_TYPE;

// Every column as text, so a row compares exactly whatever the client library does with types.
const AS_TEXT = `SELECT b, i, CAST(l AS VARCHAR) AS l, r, CAST(d AS VARCHAR) AS d, s, CAST(dt AS VARCHAR) AS dt,
  CAST(ts AS VARCHAR) AS ts, CAST(g AS VARCHAR) AS g, CAST(dyn AS VARCHAR) AS dyn FROM T ORDER BY i DESC NULLS LAST`;

const ROW_1 = [true, 1, "9000000000", 1.5, "12.345000000000000000", "hello, world", "2024-01-01 00:00:00", "26:03:04.5", "0f8fad5b-d9cb-469f-a165-70867728950e", '{"a":[1,2]}'];
const ROW_2 = [false, -2, "-3", -0.25, "0.100000000000000000", "x", "2024-06-30 12:34:56.789", "00:00:00", "00000000-0000-0000-0000-000000000000", "null"];
const NULL_ROW = Array(10).fill(null);

let dataDir: string;
let engine: QueryEngine;
/** How the catalog describes an export's query: from schemas, with the same types. */
let describer: QueryDescriber;
let scratch: string;
let extentCount = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "spillway-query-"));
  scratch = await mkdtemp(join(tmpdir(), "spillway-payload-"));
  engine = await QueryEngine.create(dataDir);
  describer = await QueryDescriber.open();
});

afterAll(async () => {
  engine.close();
  await describer.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

const utf8 = (text: string) => new TextEncoder().encode(text);

async function ingest(format: IngestFormat, payload: string | Uint8Array, opts: { header?: boolean; columns?: typeof COLUMNS } = {}) {
  const extent = `extents/db/T/e${++extentCount}.parquet`;
  return engine.ingest(format, typeof payload === "string" ? utf8(payload) : payload, opts.columns ?? COLUMNS, opts.header ?? false, extent);
}

const tableT = (...extentPaths: string[]): TableBinding[] => [{ name: "T", columns: COLUMNS, extentPaths }];

async function query(sql: string, tables: TableBinding[]): Promise<{ columns: Array<{ name: string; type: string }>; rows: unknown[][] }> {
  const result = { columns: [] as Array<{ name: string; type: string }>, rows: [] as unknown[][] };
  for await (const chunk of engine.query(sql, tables)) {
    if (chunk.columns) result.columns = chunk.columns;
    if (chunk.rows) result.rows.push(...chunk.rows);
  }
  return result;
}

async function ingestError(format: IngestFormat, payload: string, header = false): Promise<{ code: unknown; message: string }> {
  try {
    await ingest(format, payload, { header });
  } catch (err) {
    return { code: (err as { code?: unknown }).code, message: (err as Error).message };
  }
  throw new Error("payload was accepted");
}

/** A Parquet payload made by a separate DuckDB, outside the engine's data directory. */
async function parquetPayload(select: string): Promise<Uint8Array> {
  const file = join(scratch, `payload-${++extentCount}.parquet`);
  const instance = await DuckDBInstance.create(":memory:");
  const c = await instance.connect();
  try {
    await c.run(`COPY (${select}) TO '${file}' (FORMAT parquet)`);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
  return readFile(file);
}

describe("ingesting payloads of every Kusto type", () => {
  const GUID = "0F8FAD5B-D9CB-469F-A165-70867728950E";

  it("reads CSV by position, empty fields as null, and writes a Parquet extent", async () => {
    const csv = [
      `true,1,9000000000,1.5,12.345,"hello, world",2024-01-01T02:00:00+02:00,1.02:03:04.5,${GUID},"{""a"":[1,2]}"`,
      `false,-2,-3,-0.25,0.1,x,2024-06-30 12:34:56.789,00:00:00,00000000-0000-0000-0000-000000000000,null`,
      `,,,,,,,,,`,
    ].join("\n");
    const result = await ingest("csv", csv);
    expect(result.rows).toBe(3n);
    expect(result.path).toMatch(/^extents\/db\/T\/e\d+\.parquet$/);
    expect(result.bytes).toBe(BigInt((await stat(join(dataDir, result.path))).size));
    expect((await query(AS_TEXT, tableT(result.path))).rows).toEqual([ROW_1, ROW_2, NULL_ROW]);
  });

  it("reads TSV, skipping the header record when asked", async () => {
    const tsv = [
      "b\ti\tl\tr\td\ts\tdt\tts\tg\tdyn",
      `true\t1\t9000000000\t1.5\t12.345\thello, world\t2024-01-01T02:00:00+02:00\t1.02:03:04.5\t${GUID}\t{"a":[1,2]}`,
      `false\t-2\t-3\t-0.25\t0.1\tx\t2024-06-30 12:34:56.789\t00:00:00\t00000000-0000-0000-0000-000000000000\tnull`,
    ].join("\n");
    const result = await ingest("tsv", tsv, { header: true });
    expect(result.rows).toBe(2n);
    expect((await query(AS_TEXT, tableT(result.path))).rows).toEqual([ROW_1, ROW_2]);
  });

  it("reads JSON lines by name, missing keys as null, dynamic values as embedded JSON", async () => {
    const lines = [
      { b: true, i: 1, l: 9000000000, r: 1.5, d: 12.345, s: "hello, world", dt: "2024-01-01T02:00:00+02:00", ts: "1.02:03:04.5", g: GUID, dyn: { a: [1, 2] } },
      { dyn: null, ts: "00:00:00", g: "00000000-0000-0000-0000-000000000000", dt: "2024-06-30 12:34:56.789", s: "x", d: "0.1", r: -0.25, l: "-3", i: -2, b: false },
      {},
    ];
    const result = await ingest("json", lines.map((l) => JSON.stringify(l)).join("\n"));
    expect(result.rows).toBe(3n);
    // A JSON null in a dynamic column is SQL null, unlike the CSV text "null".
    expect((await query(AS_TEXT, tableT(result.path))).rows).toEqual([ROW_1, [...ROW_2.slice(0, 9), null], NULL_ROW]);
  });

  it("reads multijson: a JSON array or objects spread over lines", async () => {
    const array = await ingest("multijson", `[{"i": 1, "dyn": {"x": [1]}}, {"i": 2, "dyn": "text"}]`);
    expect((await query("SELECT i, CAST(dyn AS VARCHAR) AS dyn FROM T ORDER BY i", tableT(array.path))).rows).toEqual([
      [1, '{"x":[1]}'],
      [2, '"text"'],
    ]);
    const spread = await ingest("multijson", `{"i": 1,\n "r": 2}\n{"i": 3}`);
    expect((await query("SELECT i, r FROM T ORDER BY i", tableT(spread.path))).rows).toEqual([
      [1, 2],
      [3, null],
    ]);
  });

  it("reads Parquet by name, whatever the column order, ignoring extra columns", async () => {
    const payload = await parquetPayload(
      `SELECT '{"a":[1,2]}'::JSON AS dyn, 'extra' AS unused, true AS b, 1 AS i, 9000000000 AS l, 1.5 AS r, 12.345 AS d, 'hello, world' AS s,
       TIMESTAMPTZ '2024-01-01 02:00:00+02' AS dt, INTERVAL '1 day 2 hours 3 minutes 4.5 seconds' AS ts, '${GUID}'::UUID AS g`,
    );
    const result = await ingest("parquet", payload);
    expect(result.rows).toBe(1n);
    expect((await query(AS_TEXT, tableT(result.path))).rows).toEqual([
      [true, 1, "9000000000", 1.5, "12.345000000000000000", "hello, world", "2024-01-01 00:00:00", "26:03:04.5", ROW_1[8], '{"a":[1,2]}'],
    ]);
  });

  it("reads a Parquet timespan written as INT64 ticks", async () => {
    const result = await ingest("parquet", await parquetPayload(`SELECT 1 AS i, 937845000000 AS ts`), { columns: [COLUMNS[1]!, COLUMNS[7]!] });
    expect((await query("SELECT CAST(ts AS VARCHAR) FROM T", [{ name: "T", columns: [COLUMNS[1]!, COLUMNS[7]!], extentPaths: [result.path] }])).rows).toEqual([
      ["26:03:04.5"],
    ]);
  });

  it("describes every column with its Kusto type", async () => {
    const { path } = await ingest("csv", "");
    expect(await describer.describe("SELECT * FROM t", tableT(path))).toMatchObject({ columns: COLUMNS, tables: ["T"] });
  });

  it("announces query result columns with the same types as the catalog's describe", async () => {
    const { path } = await ingest("csv", "");
    expect((await query("SELECT * FROM T", tableT(path))).columns).toEqual(COLUMNS);
  });
});

describe("Kusto text values", () => {
  const tsColumns = [{ name: "ts", type: "timespan" }];
  const dtColumns = [{ name: "dt", type: "datetime" }];

  it("reads Kusto timespans [-][d.]hh:mm:ss[.fffffff] and DuckDB interval text", async () => {
    const { path } = await ingest("csv", ["1.02:03:04.5", "00:00:01", "10.00:00:00", "25:00:00", "1 hour"].join("\n"), { columns: tsColumns });
    const rows = (await query("SELECT epoch_us(ts) FROM T", [{ name: "T", columns: tsColumns, extentPaths: [path] }])).rows;
    expect(rows).toEqual([["93784500000"], ["1000000"], ["864000000000"], ["90000000000"], ["3600000000"]]);
  });

  it("keeps sub-millisecond timespans", async () => {
    const { path } = await ingest("csv", "00:00:00.0001234", { columns: tsColumns });
    expect((await query("SELECT epoch_us(ts) FROM T", [{ name: "T", columns: tsColumns, extentPaths: [path] }])).rows).toEqual([["123"]]);
  });
  it("keeps negative timespans", async () => {
    const { path } = await ingest("csv", "-1.02:03:04.5", { columns: tsColumns });
    expect((await query("SELECT epoch_us(ts) FROM T", [{ name: "T", columns: tsColumns, extentPaths: [path] }])).rows).toEqual([["-93784500000"]]);
  });

  it("stores datetimes as UTC instants, honouring offsets", async () => {
    const text = ["2024-01-01T02:00:00+02:00", "2024-01-01T05:30:00-05:30", "2024-01-01T00:00:00Z", "2024-01-01 00:00:00", "2024-01-01"];
    const { path } = await ingest("csv", text.join("\n"), { columns: dtColumns });
    const rows = (await query("SELECT CAST(dt AS VARCHAR) FROM T", [{ name: "T", columns: dtColumns, extentPaths: [path] }])).rows;
    expect(rows).toEqual([["2024-01-01 00:00:00"], ["2024-01-01 11:00:00"], ["2024-01-01 00:00:00"], ["2024-01-01 00:00:00"], ["2024-01-01 00:00:00"]]);
  });

  // Text ending in 'Z' takes a cheaper cast than the time-zone-aware one; both must agree.
  it("reads 'Z' text to the instant the time-zone-aware cast gives", async () => {
    const text = ["2024-01-01T00:00:00Z", "2024-06-30T12:34:56.1234567Z", " 2024-06-30 12:34:56Z", "2024-01-01T24:00:00Z", "2024-1-2T3:4:5Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"];
    const { path } = await ingest("csv", text.join("\n"), { columns: dtColumns });
    const rows = (await query("SELECT CAST(dt AS VARCHAR) FROM T", [{ name: "T", columns: dtColumns, extentPaths: [path] }])).rows;
    const duck = await DuckDBInstance.create(":memory:");
    try {
      const c = await duck.connect();
      await c.run("SET TimeZone = 'UTC'");
      for (const [i, t] of text.entries()) {
        const expected = (await c.runAndReadAll(`SELECT CAST(CAST(CAST('${t}' AS TIMESTAMPTZ) AS TIMESTAMP) AS VARCHAR)`)).getRows()[0]![0];
        expect(rows[i], t).toEqual([expected]);
      }
    } finally {
      duck.closeSync();
    }
  });
});

describe("bad payloads", () => {
  const good = "true,1,1,1,1,a,2024-01-01,00:00:01,0F8FAD5B-D9CB-469F-A165-70867728950E,{}";
  const withField = (index: number, value: string) => good.split(",").map((f, i) => (i === index ? value : f)).join(",");

  it("names the line and column of a value that does not convert", async () => {
    const error = await ingestError("csv", [good, good, withField(2, "abc")].join("\n"));
    expect(error).toEqual({ code: ErrorCode.invalidArgument, message: "payload refused: line 3, column 'l': 'abc' is not a valid long; nothing was ingested" });
  });

  it("counts the header line", async () => {
    const error = await ingestError("csv", ["b,i,l,r,d,s,dt,ts,g,dyn", good, withField(6, "yesterday")].join("\n"), true);
    expect(error.message).toBe("payload refused: line 3, column 'dt': 'yesterday' is not a valid datetime; nothing was ingested");
  });

  it.each(["2024-01-01T10:00:00+02:00Z", "2024-02-30T00:00:00Z", "Z"])("names a datetime ending in 'Z' that does not convert: %s", async (value) => {
    const error = await ingestError("csv", [good, withField(6, value)].join("\n"));
    expect(error.message).toBe(`payload refused: line 2, column 'dt': '${value}' is not a valid datetime; nothing was ingested`);
  });

  it.each([
    [0, "maybe", "b", "bool"],
    [1, "99999999999", "i", "int"],
    [3, "1,5", "r", "real"],
    [7, "soon", "ts", "timespan"],
    [8, "not-a-guid", "g", "guid"],
    [9, "{x", "dyn", "dynamic"],
  ])("names column %#: field %i '%s'", async (index, value, column, type) => {
    const field = value.includes(",") ? `"${value}"` : value;
    const error = await ingestError("csv", [good, withField(index, field)].join("\n"));
    expect(error.message).toBe(`payload refused: line 2, column '${column}': '${value}' is not a valid ${type}; nothing was ingested`);
  });

  it("names the line with the wrong number of columns", async () => {
    expect((await ingestError("csv", `${good}\ntrue,1,1`)).message).toBe("payload refused: line 2: expected 10 columns, found 3; nothing was ingested");
    expect((await ingestError("csv", `${good},extra`)).message).toBe("payload refused: line 1: expected 10 columns, found 11; nothing was ingested");
  });

  it("names the line and column in JSON lines", async () => {
    const error = await ingestError("json", `{"l": 1}\n{"l": 2}\n{"l": "x"}`);
    expect(error.message).toBe("payload refused: line 3, column 'l': 'x' is not a valid long; nothing was ingested");
  });

  it("names a column missing from a Parquet payload", async () => {
    const columns = [COLUMNS[0]!, COLUMNS[1]!];
    await expect(ingest("parquet", await parquetPayload("SELECT true AS b"), { columns })).rejects.toMatchObject({
      message: "payload refused: the parquet payload has no column 'i'; nothing was ingested",
    });
  });

  it("leaves no extent and no scratch file behind", async () => {
    const before = await readdir(join(dataDir, "extents/db/T"));
    await ingestError("csv", withField(2, "abc"));
    expect(await readdir(join(dataDir, "extents/db/T"))).toEqual(before);
    expect(await readdir(join(dataDir, "tmp/ingest"))).toEqual([]);
    expect(await readdir(join(dataDir, "tmp/query"))).toEqual([]);
  });

  it("takes a payload in pieces, split anywhere, as the same payload whole", async () => {
    const text = `${withField(1, "7")}\n${withField(1, "8")}\n`;
    async function* pieces() {
      for (let at = 0; at < text.length; at += 7) yield utf8(text.slice(at, at + 7));
    }
    const extent = `extents/db/T/e${++extentCount}.parquet`;
    const { path, rows } = await engine.ingest("csv", pieces(), COLUMNS, false, extent);
    expect(rows).toBe(2n);
    expect((await query("SELECT i FROM T ORDER BY i", tableT(path))).rows).toEqual([[7], [8]]);
  });

  it("leaves nothing behind when the source of pieces fails, and passes its error on", async () => {
    const before = await readdir(join(dataDir, "extents/db/T"));
    async function* failing() {
      yield utf8(`${withField(1, "9")}\n`);
      throw invalidArgument("the stream broke off");
    }
    await expect(engine.ingest("csv", failing(), COLUMNS, false, `extents/db/T/e${++extentCount}.parquet`)).rejects.toThrow("the stream broke off");
    expect(await readdir(join(dataDir, "extents/db/T"))).toEqual(before);
    expect(await readdir(join(dataDir, "tmp/ingest"))).toEqual([]);
  });

  it("tells a failure to keep the payload without the server's paths", async () => {
    await rm(join(dataDir, "tmp/ingest"), { recursive: true });
    try {
      const err = await ingest("csv", withField(1, "10")).then(() => undefined, (e: Error & { code?: unknown }) => e);
      expect(err).toMatchObject({ code: ErrorCode.unavailable, message: "the server could not keep the payload (ENOENT); nothing was ingested" });
      expect(err!.message).not.toContain(dataDir);
    } finally {
      await mkdir(join(dataDir, "tmp/ingest"), { recursive: true });
    }
  });
});

describe("the sandbox", () => {
  it("refuses table functions and file paths", async () => {
    await expect(query("SELECT * FROM read_csv('/etc/passwd')", [])).rejects.toMatchObject({
      code: ErrorCode.invalidArgument,
      message: "query refused: table function 'read_csv' is not allowed; read tables by name only",
    });
    await expect(query("SELECT * FROM '/etc/passwd'", [])).rejects.toMatchObject({
      code: ErrorCode.invalidArgument,
      message: "query reads unknown table '/etc/passwd'",
    });
  });

  it("refuses tables it was not given", async () => {
    await expect(query("SELECT * FROM T JOIN Users ON true JOIN Orders ON true", tableT())).rejects.toMatchObject({
      code: ErrorCode.invalidArgument,
      message: "query reads unknown tables 'Users', 'Orders'",
    });
  });

  it("binds a table with no extents as empty, with its columns", async () => {
    expect(await query("SELECT * FROM t", tableT())).toEqual({ columns: expect.any(Array), rows: [] });
    expect((await query("SELECT count(*) AS n FROM t", tableT())).columns).toEqual([{ name: "n", type: "long" }]);
  });

  it("reports DuckDB binder errors as invalid arguments", async () => {
    await expect(query("SELECT nope FROM T", tableT())).rejects.toMatchObject({
      code: ErrorCode.invalidArgument,
      message: expect.stringMatching(/^query failed: Referenced column "nope" not found in FROM clause!/),
    });
  });

  it("does not let a query read another table's extent by path", async () => {
    const { path } = await ingest("csv", "secret", { columns: [{ name: "s", type: "string" }] });
    const file = join(dataDir, path);
    const sneaky = `SELECT * FROM '${file}', (WITH "${file}" AS (SELECT 1 AS z) SELECT z FROM "${file}") q`;
    await expect(query(sneaky, [])).rejects.toMatchObject({ message: `query reads unknown table '${file}'` });
  });
});

describe("executeToSpool", () => {
  it("writes the result, cast to the output types, as a Parquet spool of rows and counts them", async () => {
    const { path } = await ingest("csv", "true,1,9000000000,1.5,12.345,a,2024-01-01,1.02:03:04.5,0F8FAD5B-D9CB-469F-A165-70867728950E,[1]\n,2,,,,,,,,");
    const output = [
      { name: "i", type: "long" },
      { name: "ts", type: "timespan" },
      { name: "dyn", type: "dynamic" },
    ];
    const folder = await engine.spools.create("run-1");
    const result = await engine.executeToSpool("SELECT i, ts, dyn, s FROM T ORDER BY i", tableT(path), output, folder);
    expect(result).toEqual({ rows: 2n, encodedFiles: [] });
    expect(await readdir(await engine.spools.open("run-1"))).toEqual([ROWS_SPOOL_FILE]);

    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    try {
      const reader = await c.runAndReadAll(`SELECT i, CAST(ts AS VARCHAR) AS ts, CAST(dyn AS VARCHAR) AS dyn FROM read_parquet('${join(folder, ROWS_SPOOL_FILE)}')`);
      expect(reader.columnTypes().map(String)).toEqual(["BIGINT", "VARCHAR", "VARCHAR"]);
      expect(reader.getRowsJson()).toEqual([
        // Timespans are spooled as INT64 ticks: 1.02:03:04.5 = 937,845,000,000 ticks.
        ["1", "937845000000", "[1]"],
        ["2", null, null],
      ]);
    } finally {
      c.closeSync();
      instance.closeSync();
    }
  });

  it("encodes in one pass the same files the writer makes from a spool of rows, split at the size limit, in order", async () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `${i % 2 === 0},${i},,,,,,0.00:00:${String(i % 60).padStart(2, "0")},,{"k":${i}}`).join("\n");
    const { path } = await ingest("csv", lines);
    const columns = [
      { name: "i", type: "long" },
      { name: "ts", type: "timespan" },
      { name: "dyn", type: "dynamic" },
    ];
    const table = { columns, dataFormat: "csv", properties: { includeHeaders: "all" } };
    const query = "SELECT i, ts, dyn FROM T ORDER BY i";

    const oneFolder = await engine.spools.create("one-pass");
    const onePass = await engine.executeToSpool(query, tableT(path), columns, oneFolder, { table, sizeLimit: 20_000, rowGroupSize: 0 });
    expect(onePass.rows).toBe(10_000n);
    // DuckDB checks the size after each chunk it writes (2,048 rows at most): several files.
    expect(onePass.encodedFiles.length).toBeGreaterThan(2);

    // The two-pass way: rows spooled, then encoded by the writer's SQL.
    const twoFolder = await engine.spools.create("two-pass");
    await engine.executeToSpool(query, tableT(path), columns, twoFolder);
    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    try {
      const twoFiles = (await encodeArtifacts(c, table, `read_parquet('${join(twoFolder, ROWS_SPOOL_FILE)}') AS s`, join(twoFolder, "enc"), { sizeLimit: 20_000, rowGroupSize: 0 })).files;
      expect(onePass.encodedFiles.length).toBe(twoFiles.length);
      const one = await Promise.all(onePass.encodedFiles.map((f) => readFile(join(oneFolder, f), "utf8")));
      const two = await Promise.all(twoFiles.map((f) => readFile(f, "utf8")));
      expect(one).toEqual(two);
      // In order: the first file starts at row 0, the last with rows ends at row 9999 (DuckDB
      // may leave a last file with the header only; the writer leaves such a file out).
      const withRows = one.filter((f) => f.trimEnd().includes("\n"));
      expect(withRows[0]!.split("\n")[1]).toMatch(/^0,/);
      expect(withRows.at(-1)!.trimEnd().split("\n").at(-1)).toMatch(/^9999,/);
    } finally {
      c.closeSync();
      instance.closeSync();
    }
  });
});

describe("executeToSpool, one run after another", () => {
  it("binds each run's tables to its own extents on a connection used again, and lets go of one whose query failed", async () => {
    const first = (await ingest("csv", "true,1,,,,,,,,\nfalse,2,,,,,,,,")).path;
    const second = (await ingest("csv", "true,3,,,,,,,,")).path;
    const output = [{ name: "i", type: "int" }];
    const connects = vi.spyOn(DuckDBInstance.prototype, "connect");
    const closes = vi.spyOn(DuckDBConnection.prototype, "closeSync");
    try {
      const rowsOf = async (name: string, extents: string[]) => {
        const folder = await engine.spools.create(name);
        const { rows } = await engine.executeToSpool("SELECT i FROM T", tableT(...extents), output, folder);
        return rows;
      };
      expect(await rowsOf("again-1", [first])).toBe(2n);
      expect(await rowsOf("again-2", [second])).toBe(1n);
      expect(await rowsOf("again-3", [])).toBe(0n);
      expect(await rowsOf("again-4", [first, second])).toBe(3n);
      // One connection at most was made for the four (none when an earlier run left one), and none was closed.
      expect(connects.mock.calls.length).toBeLessThanOrEqual(1);
      expect(closes).not.toHaveBeenCalled();
      await expect(engine.executeToSpool("SELECT i / (i - i) :: INTEGER AS i FROM T WHERE error('broken') IS NULL", tableT(first), output, await engine.spools.create("again-5"))).rejects.toThrow(/broken/);
      expect(closes).toHaveBeenCalledTimes(1);
      expect(await rowsOf("again-6", [second])).toBe(1n);
      // A query that seeds random numbers leaves its seed on its connection: not used again.
      const seeded = await engine.executeToSpool("SELECT i FROM T WHERE SETSEED(0.5) IS NULL", tableT(second), output, await engine.spools.create("again-7"));
      expect(seeded.rows).toBe(1n);
      expect(closes).toHaveBeenCalledTimes(2);
    } finally {
      connects.mockRestore();
      closes.mockRestore();
    }
  });
});

describe("limits of ad-hoc queries", () => {
  let limited: QueryEngine;
  let limitedDir: string;
  const N = [{ name: "n", type: "long" }];
  let numbers: TableBinding[];

  beforeAll(async () => {
    limitedDir = await mkdtemp(join(tmpdir(), "spillway-limits-"));
    limited = await QueryEngine.create(limitedDir, { memoryLimit: "64MB", timeoutMs: 3000 });
    const payload = utf8(Array.from({ length: 2000 }, (_, i) => String(i)).join("\n") + "\n");
    const extent = await limited.ingest("csv", payload, N, false, "extents/db/N/e1.parquet");
    numbers = [{ name: "N", columns: N, extentPaths: [extent.path] }];
  });
  afterAll(async () => {
    limited.close();
    await rm(limitedDir, { recursive: true, force: true });
  });

  const run = async (sql: string) => {
    for await (const _ of limited.query(sql, numbers));
  };

  it("stops a query that runs past the timeout, as DEADLINE_EXCEEDED", async () => {
    // 2000^4 = 16e12 combinations: far more than 3 s of work.
    const err = await run("SELECT count(*) FROM N a, N b, N c, N d WHERE a.n + b.n + c.n + d.n = -1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.deadlineExceeded, message: expect.stringContaining("--query-timeout") });
  });

  it("refuses a query that needs more memory than the limit, as RESOURCE_EXHAUSTED", async () => {
    // One list of four million strings of ~50 bytes: an aggregate state that cannot spill, far over 64 MB.
    const err = await run("SELECT list(a.n::VARCHAR || repeat('x', 40) || b.n::VARCHAR) FROM N a, N b").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("--query-memory-limit") });
  });

  it("answers a query within the limits", async () => {
    const rows: unknown[][] = [];
    for await (const chunk of limited.query("SELECT count(*) AS c FROM N", numbers)) if (chunk.rows) rows.push(...chunk.rows);
    expect(rows).toEqual([["2000"]]);
  });
});
