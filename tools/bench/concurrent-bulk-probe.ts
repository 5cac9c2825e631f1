// What runs in flight cost in memory when they are bulk runs (README "#6 and #6b, many
// exports", the default of --max-concurrent-runs): EXPORTS exports (default 8) over one table
// of PROBE_ROWS rows (default 2M), each exporting every row to Parquet in Azurite, run with
// RunContinuousExportNow CONC at a time (default: the scheduler's --max-concurrent-runs
// default, which bounds scheduled runs the same way), on a fresh Spillway. Prints the wall
// time of all runs and the peak RSS of Spillway's process tree during them (VmRSS every 100 ms).
// Beside the runs, an `Ingest` of 10 rows into another table every INGEST_EVERY_MS (default
// 500; 0 for none), one at a time: how long ingestion waits while bulk runs hold DuckDB.
//   CONC=4 npx tsx tools/bench/concurrent-bulk-probe.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS } from "@spillway/config";
import { leaveOldGenerationHeadroom } from "@spillway/rpc";
import { DataGenerator } from "./datagen.js";
import { sampleRss } from "./memory.js";
import { startAzurite, startSpillway } from "./processes.js";
import { fmtMs, MiB, percentile } from "./report.js";
import { createBlobExternalTable, createExport, createTable, DATABASE, EXPORT_QUERY, exportedRows, ingestFiles, runNow } from "./spillway-ops.js";
leaveOldGenerationHeadroom(); // as the bench runner does
const ROWS = Number(process.env.PROBE_ROWS ?? 2_000_000);
const EXPORTS = Number(process.env.EXPORTS ?? 8);
const CONC = Number(process.env.CONC ?? DEFAULTS.maxConcurrentRuns);
const INGEST_EVERY_MS = Number(process.env.INGEST_EVERY_MS ?? 500);
const SMALL_PAYLOADS = 400;
const work = mkdtempSync(join(tmpdir(), "spillway-probe-"));
const gen = await DataGenerator.create(join(work, "data"), 20260101, ROWS);
const files = await gen.payloads(ROWS);
const small: Buffer[] = [];
for (let i = 0; i < (INGEST_EVERY_MS > 0 ? SMALL_PAYLOADS : 0); i++) small.push(await gen.smallPayload(i, 10));
gen.close();
const azurite = await startAzurite(join(work, "azurite"));
const sw = await startSpillway({ name: "probe", workDir: work });
try {
  await createTable(sw, "T");
  await createTable(sw, "Beside");
  // Created before the rows come in, so each export's run takes all of them.
  for (let i = 0; i < EXPORTS; i++) {
    await createBlobExternalTable(sw, azurite, `Ext${i}`, `bulk${i}`, "parquet");
    await createExport(sw, `E${i}`, `Ext${i}`, EXPORT_QUERY("T"));
  }
  await ingestFiles(sw, "T", files, 2);
  const rss = sampleRss([sw.pid]);
  const t0 = performance.now();
  let next = 0;
  const runMs: number[] = [];
  const worker = async () => {
    while (next < EXPORTS) {
      const name = `E${next++}`;
      const r0 = performance.now();
      const r = await runNow(sw, name);
      runMs.push(performance.now() - r0);
      if (exportedRows(r) !== ROWS) throw new Error(`${name} exported ${exportedRows(r)} rows, expected ${ROWS}`);
    }
  };
  let running = true;
  const ingestMs: number[] = [];
  const beside = (async () => {
    for (let i = 0; running && INGEST_EVERY_MS > 0; i++) {
      const i0 = performance.now();
      await sw.query.ingest({ database: DATABASE, table: "Beside", format: "csv", payload: small[i % small.length]! });
      ingestMs.push(performance.now() - i0);
      await new Promise((resolve) => setTimeout(resolve, INGEST_EVERY_MS));
    }
  })();
  await Promise.all(Array.from({ length: CONC }, worker)).finally(() => (running = false));
  const wall = performance.now() - t0;
  await beside;
  const { peakBytes } = rss.stop();
  console.log(`${EXPORTS} runs of ${ROWS} rows, ${CONC} at a time: wall ${(wall / 1000).toFixed(1)} s; runs (as they ended) ${runMs.map((ms) => (ms / 1000).toFixed(1)).join(", ")} s; peak RSS of Spillway ${(peakBytes / MiB).toFixed(0)} MiB`);
  if (ingestMs.length) {
    console.log(`${ingestMs.length} Ingest calls of 10 rows beside them: p50 ${fmtMs(percentile(ingestMs, 50))}, p99 ${fmtMs(percentile(ingestMs, 99))}, max ${fmtMs(Math.max(...ingestMs))}`);
  }
} finally {
  await sw.stop();
  await azurite.stop();
  rmSync(work, { recursive: true, force: true });
}
