// What runs in flight cost in memory when they are bulk runs (README "#6 and #6b, many
// exports", the default of --max-concurrent-runs): EXPORTS exports (default 8) over one table
// of PROBE_ROWS rows (default 2M), each exporting every row to Parquet in Azurite, run with
// RunContinuousExportNow CONC at a time (default: the scheduler's --max-concurrent-runs
// default, which bounds scheduled runs the same way), on a fresh Spillway. Prints the wall
// time of all runs and the peak RSS of Spillway's process tree during them (VmRSS every 100 ms).
//   CONC=4 npx tsx tools/bench/concurrent-bulk-probe.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS } from "@spillway/config";
import { leaveOldGenerationHeadroom } from "@spillway/rpc";
import { DataGenerator } from "./datagen.js";
import { sampleRss } from "./memory.js";
import { startAzurite, startSpillway } from "./processes.js";
import { MiB } from "./report.js";
import { createBlobExternalTable, createExport, createTable, EXPORT_QUERY, exportedRows, ingestFiles, runNow } from "./spillway-ops.js";
leaveOldGenerationHeadroom(); // as the bench runner does
const ROWS = Number(process.env.PROBE_ROWS ?? 2_000_000);
const EXPORTS = Number(process.env.EXPORTS ?? 8);
const CONC = Number(process.env.CONC ?? DEFAULTS.maxConcurrentRuns);
const work = mkdtempSync(join(tmpdir(), "spillway-probe-"));
const gen = await DataGenerator.create(join(work, "data"), 20260101, ROWS);
const files = await gen.payloads(ROWS);
gen.close();
const azurite = await startAzurite(join(work, "azurite"));
const sw = await startSpillway({ name: "probe", workDir: work });
try {
  await createTable(sw, "T");
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
  await Promise.all(Array.from({ length: CONC }, worker));
  const wall = performance.now() - t0;
  const { peakBytes } = rss.stop();
  console.log(`${EXPORTS} runs of ${ROWS} rows, ${CONC} at a time: wall ${(wall / 1000).toFixed(1)} s; runs (as they ended) ${runMs.map((ms) => (ms / 1000).toFixed(1)).join(", ")} s; peak RSS of Spillway ${(peakBytes / MiB).toFixed(0)} MiB`);
} finally {
  await sw.stop();
  await azurite.stop();
  rmSync(work, { recursive: true, force: true });
}
