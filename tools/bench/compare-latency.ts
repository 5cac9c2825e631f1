// #3's runs on two checkouts at once, alternating run by run: which is faster, measured in
// the same minutes. This machine's speed drifts by up to 2× within an hour (README
// "Benchmarks"), so two #3 figures taken one after the other can differ by more than a
// change does; paired rounds share the drift.
//
//   npx tsx tools/bench/compare-latency.ts <other checkout> [runs, default 200]
//
// The other checkout needs its own `npm ci`. Each round ingests the same 1,000 rows into
// both, then runs each export once, in an order that alternates round by round.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DataGenerator, EXPORT_QUERY } from "./datagen.js";
import { startAzurite, startSpillway, type Spillway } from "./processes.js";
import { fmtMs, median, percentile } from "./report.js";
import { loadSettings, REPO_ROOT } from "./settings.js";
import { createBlobExternalTable, createExport, createTable, DATABASE, exportedRows, runNow } from "./spillway-ops.js";

const WARMUP_ROUNDS = 5;
const ROWS = 1000;

const other = process.argv[2] ? resolve(process.argv[2]) : undefined;
const rounds = Number(process.argv[3] ?? 200);
if (!other || !existsSync(join(other, "node_modules")) || !(rounds > 0)) {
  console.error("usage: npx tsx tools/bench/compare-latency.ts <other checkout, with node_modules> [runs]");
  process.exit(2);
}

const workDir = mkdtempSync(join(tmpdir(), "spillway-compare-"));
const azurite = await startAzurite(join(workDir, "azurite"));
const data = await DataGenerator.create(join(workDir, "data"), 20260101, ROWS * (rounds + WARMUP_ROUNDS));
const checkouts = [REPO_ROOT, other];
const spillways: Spillway[] = [];
try {
  for (const [k, root] of checkouts.entries()) spillways.push(await startSpillway({ name: `checkout-${k}`, workDir, root }));
  for (const [k, sw] of spillways.entries()) {
    await createTable(sw, "Latency");
    await createBlobExternalTable(sw, azurite, "LatencyLake", `compare${k}`, "parquet");
    // As #3 makes it (BENCH_SIZE_LIMIT included).
    await createExport(sw, "LatencyToLake", "LatencyLake", EXPORT_QUERY("Latency"), undefined, loadSettings().sizeLimit);
  }
  const latencies: number[][] = [[], []];
  for (let round = 0; round < rounds + WARMUP_ROUNDS; round++) {
    const payload = await data.smallPayload(round, ROWS);
    for (const k of round % 2 ? [1, 0] : [0, 1]) {
      const sw = spillways[k]!;
      await sw.query.ingest({ database: DATABASE, table: "Latency", format: "csv", payload });
      const t0 = performance.now();
      const outcome = await runNow(sw, "LatencyToLake");
      const ms = performance.now() - t0;
      if (exportedRows(outcome) !== ROWS) throw new Error(`${checkouts[k]}: a run exported ${exportedRows(outcome)} rows, expected ${ROWS}`);
      if (round >= WARMUP_ROUNDS) latencies[k]!.push(ms);
    }
  }
  for (const [k, root] of checkouts.entries()) {
    const l = latencies[k]!;
    console.log(`${root}: p50 ${fmtMs(percentile(l, 50))}, p90 ${fmtMs(percentile(l, 90))}, p99 ${fmtMs(percentile(l, 99))}, min ${fmtMs(Math.min(...l))}`);
  }
  const differences = latencies[0]!.map((ms, i) => ms - latencies[1]![i]!);
  console.log(
    `this checkout minus the other, round by round: median ${fmtMs(median(differences))}; this one faster in ${differences.filter((d) => d < 0).length} of ${differences.length} rounds`,
  );
} finally {
  await Promise.allSettled(spillways.map((sw) => sw.stop()));
  await azurite.stop();
  data.close();
  rmSync(workDir, { recursive: true, force: true });
}
