// One-off: time Spillway's own ingestion SQL (payloadSelectSql) in DuckDB on one 100k-row payload.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { payloadSelectSql } from "../../services/query/src/payload-ingestion.js";
import { DataGenerator, COLUMNS } from "./datagen.js";
const dir = mkdtempSync(join(tmpdir(), "diag-"));
const gen = await DataGenerator.create(join(dir, "data"), 20260101, 1_000_000);
const files = await gen.payloads(1_000_000);
gen.close();
const db = await DuckDBInstance.create(":memory:");
const c = await db.connect();
await c.run("SET TimeZone='UTC'");
const time = async (label: string, sql: (f: string, out: string) => string) => {
  const ms: number[] = [];
  for (const [i, f] of files.entries()) {
    const out = join(dir, `o-${i}.parquet`);
    const t0 = performance.now();
    await c.run(sql(f.path, out));
    ms.push(performance.now() - t0);
    rmSync(out, { force: true });
  }
  ms.sort((a, b) => a - b);
  console.log(`${label}: median ${ms[Math.floor(ms.length / 2)]!.toFixed(0)} ms per 100k rows`);
};
const t0 = performance.now();
for (const f of files) { writeFileSync(join(dir, "scratch.csv"), readFileSync(f.path)); }
console.log(`copy payload bytes to a scratch file (what Ingest does first): ${((performance.now() - t0) / files.length).toFixed(0)} ms per payload`);
await time("Spillway's ingest COPY (read_csv parallel=false, casts, Parquet zstd)", (f, out) => `COPY (${payloadSelectSql("csv", f, COLUMNS, false)}) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`);
await time("same SQL, read_csv parallel=true", (f, out) => `COPY (${payloadSelectSql("csv", f, COLUMNS, false).replace("parallel = false", "parallel = true")}) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`);
await time("same SQL, Parquet snappy", (f, out) => `COPY (${payloadSelectSql("csv", f, COLUMNS, false)}) TO '${out}' (FORMAT parquet, COMPRESSION snappy)`);
await time("read only: count(*) of the SELECT", (f) => `SELECT count(*) FROM (${payloadSelectSql("csv", f, COLUMNS, false)})`);
await time("typed read_csv (DuckDB's own), Parquet zstd", (f, out) => `COPY (SELECT Id, Name, Value, CAST(Timestamp AS TIMESTAMP) AS Timestamp, Guid, Props FROM read_csv('${f}', header=false, auto_detect=false, columns={'Id':'BIGINT','Name':'VARCHAR','Value':'DOUBLE','Timestamp':'TIMESTAMPTZ','Guid':'UUID','Props':'JSON'})) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`);
c.closeSync(); db.closeSync();
rmSync(dir, { recursive: true, force: true });
