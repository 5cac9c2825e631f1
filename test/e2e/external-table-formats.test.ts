import { gunzipSync } from "node:zlib";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckDBInstance } from "@duckdb/node-api";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { downloadArtifact } from "../support/artifact-reader.js";
import { newContainer } from "../support/fixtures.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";
import { ONE_COLUMN_PER_TYPE, PARQUET_SCHEMA_OF_ONE_COLUMN_PER_TYPE } from "../support/kusto-columns.js";

// Every format × compression × header option, exported through the real services into
// Azurite, then read back value by value for every Kusto type (SPEC §5).

const COLUMNS = ONE_COLUMN_PER_TYPE;
const GUID = "0f8fad5b-d9cb-469f-a165-70867728950e";
const PAYLOAD = [
  { b: true, i: 1, l: 9000000000, r: 1.5, d: "12.345", s: 'a,"b"', dt: "2024-01-02T03:04:05.123456Z", ts: "1.02:03:04.5", g: GUID, dyn: { a: [1, "x"] } },
  { b: false, i: -2, l: -3, r: -0.25, d: "0", s: "tab\there", dt: "2024-06-30T12:34:56Z", ts: "-00:00:01", g: "00000000-0000-0000-0000-000000000000", dyn: "s" },
];
// Kusto's text renderings of those rows.
const TEXT = [
  ["true", "1", "9000000000", "1.5", "12.345000000000000000", 'a,"b"', "2024-01-02T03:04:05.1234560Z", "1.02:03:04.5000000", GUID, '{"a":[1,"x"]}'],
  ["false", "-2", "-3", "-0.25", "0.000000000000000000", "tab\there", "2024-06-30T12:34:56.0000000Z", "-00:00:01", "00000000-0000-0000-0000-000000000000", '"s"'],
];

interface Variant {
  name: string;
  dataFormat: string;
  properties: Record<string, unknown>;
}

const VARIANTS: Variant[] = [
  ...["csv", "tsv"].flatMap((f) =>
    ["none", "all", "firstFile"].flatMap((h) =>
      [false, true].map((compressed) => ({ name: `${f}_${h}_${compressed ? "gz" : "plain"}`, dataFormat: f, properties: { includeHeaders: h, compressed } })),
    ),
  ),
  { name: "csv_bom", dataFormat: "csv", properties: { encoding: "UTF8BOM", includeHeaders: "all" } },
  { name: "json_plain", dataFormat: "json", properties: {} },
  { name: "json_gz", dataFormat: "json", properties: { compressed: true } },
  ...["snappy", "gzip", "zstd", "lz4_raw", "brotli"].map((c) => ({ name: `parquet_${c}`, dataFormat: "parquet", properties: { compressionType: c } })),
];

describe("external table formats, read back value by value", () => {
  let azurite: Azurite;
  let sw: SpillwayUnderTest;
  let container: string;
  const runs = new Map<string, Array<{ path: string; numRecords: bigint }>>();

  beforeAll(async () => {
    azurite = await useAzurite();
    sw = await startSpillwayProcesses("all");
    container = await newContainer(azurite, "formats");
    await sw.catalog.createTable({ name: "AllTypes", columns: COLUMNS });
    for (const v of VARIANTS) {
      await sw.catalog.createExternalTable({
        name: `X_${v.name}`,
        kind: "blob",
        dataFormat: v.dataFormat,
        columns: COLUMNS,
        connectionStrings: [azurite.connectionString(`${container}/${v.name}`)],
        properties: v.properties,
      });
      await sw.catalog.createOrAlterContinuousExport({
        name: `E_${v.name}`,
        externalTable: `X_${v.name}`,
        query: "SELECT * FROM AllTypes ORDER BY i DESC",
        properties: { intervalBetweenRuns: { seconds: 3600n } },
      });
    }
    await sw.query.ingest({ table: "AllTypes", format: "json", payload: Buffer.from(PAYLOAD.map((r) => JSON.stringify(r)).join("\n")) });
    for (const v of VARIANTS) {
      const run = await sw.catalog.runContinuousExportNow({ name: `E_${v.name}` });
      expect(run.result, `${v.name}: ${run.details}`).toBe("Completed");
      runs.set(v.name, run.artifacts);
    }
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
  });

  it.each(VARIANTS.filter((v) => v.dataFormat === "csv" || v.dataFormat === "tsv"))("$name: text renderings, header and bytes", async (v) => {
    const [artifact] = runs.get(v.name)!;
    expect(artifact!.numRecords).toBe(2n);
    expect(artifact!.path).toMatch(v.properties.compressed ? new RegExp(`\\.${v.dataFormat}\\.gz$`) : new RegExp(`\\.${v.dataFormat}$`));
    let bytes = await downloadArtifact(azurite.client, artifact!.path);
    if (v.properties.compressed) {
      expect([...bytes.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
      bytes = gunzipSync(bytes);
    }
    if (v.properties.encoding === "UTF8BOM") {
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      bytes = bytes.subarray(3);
    } else {
      expect(bytes[0]).not.toBe(0xef);
    }
    const text = bytes.toString("utf8");
    const sep = v.dataFormat === "tsv" ? "\t" : ",";
    const hasHeader = v.properties.includeHeaders === "all" || v.properties.includeHeaders === "firstFile";
    expect(text.startsWith(COLUMNS.map((c) => c.name).join(sep) + "\n")).toBe(hasHeader);
    expect(await readText(text, sep, hasHeader)).toEqual(TEXT);
  });

  it.each(VARIANTS.filter((v) => v.dataFormat === "json"))("$name: one JSON object per line, dynamic embedded", async (v) => {
    const [artifact] = runs.get(v.name)!;
    let bytes = await downloadArtifact(azurite.client, artifact!.path);
    if (v.properties.compressed) bytes = gunzipSync(bytes);
    const lines = bytes.toString("utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { b: true, i: 1, l: 9000000000, r: 1.5, d: 12.345, s: 'a,"b"', dt: TEXT[0]![6], ts: TEXT[0]![7], g: GUID, dyn: { a: [1, "x"] } },
      { b: false, i: -2, l: -3, r: -0.25, d: 0, s: "tab\there", dt: TEXT[1]![6], ts: TEXT[1]![7], g: TEXT[1]![8], dyn: "s" },
    ]);
  });

  it.each(VARIANTS.filter((v) => v.dataFormat === "parquet"))("$name: Parquet types and values as SPEC §5 maps them", async (v) => {
    const [artifact] = runs.get(v.name)!;
    const dir = mkdtempSync(join(tmpdir(), "pq-"));
    try {
      const file = join(dir, "a.parquet");
      writeFileSync(file, await downloadArtifact(azurite.client, artifact!.path));
      const instance = await DuckDBInstance.create(":memory:");
      const c = await instance.connect();
      const schema = (await c.runAndReadAll(`SELECT name, type, converted_type, coalesce(logical_type, '') FROM parquet_schema('${file}') WHERE name <> 'duckdb_schema'`)).getRowsJson();
      // datetime is an instant: TIMESTAMP(isAdjustedToUTC=true, MICROS).
      expect(schema[6]![3]).toMatch(/^TimestampType\(isAdjustedToUTC=1, unit=TimeUnit\(MILLIS=<null>, MICROS=MicroSeconds\(\)/);
      expect(schema.map((r) => r.slice(0, 3))).toEqual(PARQUET_SCHEMA_OF_ONE_COLUMN_PER_TYPE);
      const codec = (await c.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`)).getRowsJson();
      expect(codec).toEqual([[String(v.properties.compressionType).toUpperCase()]]);
      const rows = (await c.runAndReadAll(`SELECT b, i, l, r, CAST(d AS VARCHAR), s, CAST(dt AS VARCHAR), ts, g, dyn FROM read_parquet('${file}')`)).getRowsJson();
      expect(rows).toEqual([
        [true, 1, "9000000000", 1.5, "12.345000000000000000", 'a,"b"', "2024-01-02 03:04:05.123456+00", "937845000000", GUID, '{"a":[1,"x"]}'],
        [false, -2, "-3", -0.25, "0.000000000000000000", "tab\there", "2024-06-30 12:34:56+00", "-10000000", TEXT[1]![8], '"s"'],
      ]);
      c.closeSync();
      instance.closeSync();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Parses CSV/TSV text with DuckDB's reader, every field as text. */
async function readText(text: string, sep: string, header: boolean): Promise<string[][]> {
  const dir = mkdtempSync(join(tmpdir(), "txt-"));
  try {
    const file = join(dir, "a.txt");
    writeFileSync(file, text);
    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    const cols = `{${COLUMNS.map((col) => `'${col.name}': 'VARCHAR'`).join(", ")}}`;
    const rows = (await c.runAndReadAll(`SELECT * FROM read_csv('${file}', header = ${header}, auto_detect = false, delim = '${sep === "\t" ? "\\t" : ","}', quote = '"', escape = '"', columns = ${cols})`)).getRowsJson();
    c.closeSync();
    instance.closeSync();
    return rows as string[][];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
