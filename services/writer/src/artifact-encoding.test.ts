import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { encodeArtifactSql, quoteLiteral } from "@spillway/duck";
import { ExternalTablePropertiesSchema, ExternalTableSchema, type ExternalTable } from "@spillway/proto";
import { artifactFileName } from "@spillway/storage";
import { finishTextFile } from "./text-finishing.js";
import { ONE_COLUMN_PER_TYPE, PARQUET_SCHEMA_OF_ONE_COLUMN_PER_TYPE } from "../../../test/support/kusto-columns.js";

type Properties = MessageInitShape<typeof ExternalTablePropertiesSchema>;

const COLUMNS = ONE_COLUMN_PER_TYPE;

// The spool as QueryEngine.executeToSpool writes it: each column in its stored form (timespans as INT64 ticks).
const SPOOL_ROWS = `SELECT * FROM (VALUES
  (true, 1, 9000000000::BIGINT, 1.5::DOUBLE, 12.345::DECIMAL(38,18), 'a,"b"', TIMESTAMP '2024-01-01 00:00:00',
   epoch_us(INTERVAL '1 day 2 hours 3 minutes 4.5 seconds') * 10, '0F8FAD5B-D9CB-469F-A165-70867728950E'::UUID, '{"a":[1,"x"]}'::JSON),
  (false, -2, -3::BIGINT, -0.25::DOUBLE, 0::DECIMAL(38,18), '', TIMESTAMP '2024-06-30 12:34:56.789',
   epoch_us(INTERVAL '0 seconds') * 10, '00000000-0000-0000-0000-000000000000'::UUID, '"s"'::JSON),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS v(b, i, l, r, d, s, dt, ts, g, dyn)`;

let dir: string;
let spool: string;
let instance: DuckDBInstance;
let connection: DuckDBConnection;
let outputs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "spillway-writer-"));
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
  await connection.run("SET TimeZone = 'UTC'");
  spool = await writeSpool(SPOOL_ROWS);
});

afterAll(async () => {
  connection.closeSync();
  instance.closeSync();
  await rm(dir, { recursive: true, force: true });
});

async function writeSpool(select: string): Promise<string> {
  const file = join(dir, `spool-${++outputs}.parquet`);
  await connection.run(`COPY (${select}) TO ${quoteLiteral(file)} (FORMAT parquet)`);
  return file;
}

function table(dataFormat: string, properties: Properties = {}, columns = COLUMNS): ExternalTable {
  return create(ExternalTableSchema, { name: "Ext", dataFormat, columns, properties: create(ExternalTablePropertiesSchema, properties) });
}

/** Runs the COPY, checks the row count it reports, and returns the output file. */
async function encode(t: ExternalTable, from = spool, rowGroupSize = 0): Promise<string> {
  const out = join(dir, `out-${++outputs}.${t.dataFormat}`);
  const reader = await connection.runAndReadAll(encodeArtifactSql(t, `read_parquet(${quoteLiteral(from)}) AS s`, out, { rowGroupSize, sizeLimit: 0 }));
  const expectedRows = (await connection.runAndReadAll(`SELECT count(*) FROM read_parquet(${quoteLiteral(from)})`)).getRows()[0]![0];
  expect(reader.getRows()).toEqual([[expectedRows]]);
  return out;
}

const text = async (file: string) => readFile(file, "utf8");

describe("text formats", () => {
  it("csv: Kusto renderings, quoting, empty string vs null, header when asked", async () => {
    expect(await text(await encode(table("csv", { includeHeaders: "all" })))).toBe(
      [
        "b,i,l,r,d,s,dt,ts,g,dyn",
        `true,1,9000000000,1.5,12.345000000000000000,"a,""b""",2024-01-01T00:00:00.0000000Z,1.02:03:04.5000000,0f8fad5b-d9cb-469f-a165-70867728950e,"{""a"":[1,""x""]}"`,
        `false,-2,-3,-0.25,0.000000000000000000,"",2024-06-30T12:34:56.7890000Z,00:00:00,00000000-0000-0000-0000-000000000000,"""s"""`,
        ",,,,,,,,,",
        "",
      ].join("\n"),
    );
  });

  it("csv without headers starts with the first row", async () => {
    const lines = (await text(await encode(table("csv", { includeHeaders: "none" })))).split("\n");
    expect(lines[0]).toBe(
      `true,1,9000000000,1.5,12.345000000000000000,"a,""b""",2024-01-01T00:00:00.0000000Z,1.02:03:04.5000000,0f8fad5b-d9cb-469f-a165-70867728950e,"{""a"":[1,""x""]}"`,
    );
    expect(lines).toHaveLength(4);
  });

  it("tsv: tab separated, same renderings", async () => {
    expect(await text(await encode(table("tsv", { includeHeaders: "all" })))).toBe(
      [
        "b\ti\tl\tr\td\ts\tdt\tts\tg\tdyn",
        `true\t1\t9000000000\t1.5\t12.345000000000000000\t"a,""b"""\t2024-01-01T00:00:00.0000000Z\t1.02:03:04.5000000\t0f8fad5b-d9cb-469f-a165-70867728950e\t"{""a"":[1,""x""]}"`,
        `false\t-2\t-3\t-0.25\t0.000000000000000000\t""\t2024-06-30T12:34:56.7890000Z\t00:00:00\t00000000-0000-0000-0000-000000000000\t"""s"""`,
        "\t".repeat(9),
        "",
      ].join("\n"),
    );
  });

  it("json: one object per line, dynamic values embedded as raw JSON", async () => {
    const lines = (await text(await encode(table("json")))).trimEnd().split("\n");
    expect(lines[0]).toBe(
      `{"b":true,"i":1,"l":9000000000,"r":1.5,"d":12.345000000000000000,"s":"a,\\"b\\"","dt":"2024-01-01T00:00:00.0000000Z","ts":"1.02:03:04.5000000","g":"0f8fad5b-d9cb-469f-a165-70867728950e","dyn":{"a":[1,"x"]}}`,
    );
    expect(lines.slice(1).map((l) => JSON.parse(l))).toEqual([
      { b: false, i: -2, l: -3, r: -0.25, d: 0, s: "", dt: "2024-06-30T12:34:56.7890000Z", ts: "00:00:00", g: "00000000-0000-0000-0000-000000000000", dyn: "s" },
      { b: null, i: null, l: null, r: null, d: null, s: null, dt: null, ts: null, g: null, dyn: null },
    ]);
  });

  it("gzips text when compressed, with a BOM or without the header line when asked", async () => {
    const raw = await encode(table("csv", { includeHeaders: "all" }));
    const plain = await text(raw);
    const gzFile = join(dir, `out-${++outputs}.csv.gz`);
    await finishTextFile(raw, gzFile, { gzip: true, bom: false, dropHeader: false });
    const gz = await readFile(gzFile);
    expect([...gz.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(gunzipSync(gz).toString("utf8")).toBe(plain);

    const bomFile = join(dir, `out-${++outputs}.csv`);
    await finishTextFile(raw, bomFile, { gzip: false, bom: true, dropHeader: true });
    const bytes = await readFile(bomFile);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(bytes.subarray(3).toString("utf8")).toBe(plain.slice(plain.indexOf("\n") + 1));
  });
});

describe("datetime and timespan text", () => {
  const columns = [
    { name: "dt", type: "datetime" },
    { name: "ts", type: "timespan" },
  ];

  async function render(rows: Array<[string, string]>): Promise<string[]> {
    const values = rows.map(([dt, ts]) => `(TIMESTAMP '${dt}', epoch_us(INTERVAL '${ts}') * 10)`).join(", ");
    const from = await writeSpool(`SELECT * FROM (VALUES ${values}) AS v(dt, ts)`);
    return (await text(await encode(table("csv", {}, columns), from))).trimEnd().split("\n");
  }

  it("renders datetimes as UTC ISO 8601 with 7 fraction digits", async () => {
    expect(await render([
      ["2024-02-29 23:59:59.123456", "0 seconds"],
      ["1999-12-31 00:00:00.5", "0 seconds"],
      ["2024-01-01 00:00:00.000001", "0 seconds"],
    ])).toEqual([
      "2024-02-29T23:59:59.1234560Z,00:00:00",
      "1999-12-31T00:00:00.5000000Z,00:00:00",
      "2024-01-01T00:00:00.0000010Z,00:00:00",
    ]);
  });

  it("renders timespans as [d.]hh:mm:ss[.fffffff]", async () => {
    const dt = "2024-01-01 00:00:00";
    const rendered = await render([
      [dt, "1 day 2 hours 3 minutes 4.5 seconds"],
      [dt, "0 seconds"],
      [dt, "23 hours 59 minutes 59.999 seconds"],
      [dt, "48 hours"],
      [dt, "12 days 1 second"],
      [dt, "0.001 seconds"],
    ]);
    expect(rendered.map((l) => l.split(",")[1])).toEqual([
      "1.02:03:04.5000000",
      "00:00:00",
      "23:59:59.9990000",
      "2.00:00:00",
      "12.00:00:01",
      "00:00:00.0010000",
    ]);
  });

  it("renders negative timespans with a leading '-'", async () => {
    expect(await render([["2024-01-01 00:00:00", "-1 day -2 hours -3 minutes -4.5 seconds"]])).toEqual([
      "2024-01-01T00:00:00.0000000Z,-1.02:03:04.5000000",
    ]);
  });
});

describe("parquet", () => {
  async function schema(file: string) {
    const reader = await connection.runAndReadAll(`SELECT name, type, converted_type FROM parquet_schema(${quoteLiteral(file)}) WHERE name <> 'duckdb_schema'`);
    return reader.getRowsJson();
  }

  it("keeps native types; timespans as INT64 ticks, guid and dynamic as strings", async () => {
    const out = await encode(table("parquet"));
    expect(await schema(out)).toEqual(PARQUET_SCHEMA_OF_ONE_COLUMN_PER_TYPE);
    const rows = (await connection.runAndReadAll(`SELECT CAST(dt AS VARCHAR), ts, g, dyn FROM read_parquet(${quoteLiteral(out)})`)).getRowsJson();
    expect(rows).toEqual([
      ["2024-01-01 00:00:00+00", "937845000000", "0f8fad5b-d9cb-469f-a165-70867728950e", '{"a":[1,"x"]}'],
      ["2024-06-30 12:34:56.789+00", "0", "00000000-0000-0000-0000-000000000000", '"s"'],
      [null, null, null, null],
    ]);
  });

  it("uses snappy by default, the table's compression type otherwise, and the row group size", async () => {
    const metadata = async (file: string) =>
      (await connection.runAndReadAll(`SELECT DISTINCT row_group_id, compression FROM parquet_metadata(${quoteLiteral(file)}) ORDER BY ALL`)).getRowsJson();
    const columns = [{ name: "i", type: "long" }];
    const many = await writeSpool("SELECT range AS i FROM range(5000)");
    expect(await metadata(await encode(table("parquet", {}, columns), many))).toEqual([["0", "SNAPPY"]]);
    expect(await metadata(await encode(table("parquet", { compressionType: "zstd" }, columns), many, 2048))).toEqual([
      ["0", "ZSTD"],
      ["1", "ZSTD"],
      ["2", "ZSTD"],
    ]);
  });

  it("refuses an unknown data format", () => {
    expect(() => encodeArtifactSql(table("avro"), "s", join(dir, "x.avro"), { rowGroupSize: 0, sizeLimit: 0 })).toThrow("unsupported data format 'avro'");
  });
});

describe("artifactFileName", () => {
  it.each([
    ["csv", {}, "run-7.csv"],
    ["json", {}, "run-7.json"],
    ["parquet", {}, "run-7.parquet"],
    ["csv", { namePrefix: "export_" }, "export_run-7.csv"],
    ["tsv", { fileExtension: ".txt" }, "run-7.txt"],
    ["tsv", { fileExtension: "tab" }, "run-7.tab"],
    ["csv", { compressed: true }, "run-7.csv.gz"],
    ["json", { compressed: true, namePrefix: "p-", fileExtension: ".jsonl" }, "p-run-7.jsonl.gz"],
    ["parquet", { compressed: true, compressionType: "zstd" }, "run-7.parquet"],
  ] as Array<[string, Properties, string]>)("%s %o → %s", (format, properties, expected) => {
    expect(artifactFileName(table(format, properties), "run-7")).toBe(expected);
  });
});
