import type { BenchContext } from "../context.js";
import type { Spillway } from "../processes.js";
import { EXPORT_QUERY } from "../datagen.js";
import { fmtMs, limitFigure, median, percentile, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createBlobExternalTable, createExport, createTable, DATABASE, exportedRows, runNow } from "../spillway-ops.js";
import { formatPhases, medianRunTimeline, runPhases, slowestRunTimelines } from "../trace-collector.js";

const WARMUP_RUNS = 5;
/** Runs with nothing new to export, timed after the measured ones. */
const EMPTY_RUNS = 100;

/** Runs of the traced pass that gives #3's phases. */
const TRACED_RUNS = 100;

/**
 * #3: ingest 1,000 rows, then RunContinuousExportNow; the latency is from the trigger
 * to the response, which Spillway sends once the run has committed (artifacts and
 * checkpoint). Parquet to Azurite. A few warm-up runs first are not counted. The figure is
 * Spillway on its embedded default, as `npm start` runs it, which sends its spans nowhere;
 * with tracing on, a second Spillway sends them to the bench for the run's phases, and its
 * own latency is reported beside them.
 */
export async function runLatency(ctx: BenchContext): Promise<Figure[]> {
  const { settings, azurite } = ctx;
  const rows = scaled(settings, 1000);
  const runs = settings.latencyRuns;
  const measure = `run latency, ingest ${rows.toLocaleString("en-US")} rows then trigger, over ${runs} runs`;

  const notes: string[] = [];
  let p50: number;
  let p99: number;
  const sw = await ctx.spillway("latency", undefined, false);
  try {
    const { latencies, ingestMs } = await runLatencies(ctx, sw, "latency", rows, runs);
    p50 = percentile(latencies, 50);
    p99 = percentile(latencies, 99);
    const empty = await emptyRunLatencies(sw, Math.min(runs, EMPTY_RUNS));
    notes.push(
      `min ${fmtMs(Math.min(...latencies))}, mean ${fmtMs(latencies.reduce((a, b) => a + b, 0) / latencies.length)}, max ${fmtMs(Math.max(...latencies))}; ${WARMUP_RUNS} warm-up runs not counted; Spillway untraced, as \`npm start\` runs it`,
      `each run wrote one Parquet artifact of ${rows} rows to Azurite; the Ingest call before it took median ${fmtMs(median(ingestMs))}`,
      `then ${empty.length} runs with nothing new to export, one after another (the trigger, the run's range, its opening and commit in the ledger, the query service's listing of extents, the audit record; no query, file or upload): p50 ${fmtMs(percentile(empty, 50))}, p99 ${fmtMs(percentile(empty, 99))}`,
    );
  } finally {
    await ctx.stopSpillway(sw);
    await azurite.deleteContainer("latency");
  }
  if (!ctx.collector) notes.push("phases not measured (BENCH_TRACE=0)");
  else {
    // A diagnosis only: its failure must not cost the figures measured above.
    try {
      notes.push(...(await tracedPhases(ctx, rows, Math.min(runs, TRACED_RUNS))));
    } catch (err) {
      notes.push(`phases not measured: the traced pass failed (${(err as Error).message})`);
    }
  }
  return [
    limitFigure("3", `${measure}: p50`, p50, "ms", 20, "p50 ≤ 20 ms", notes),
    limitFigure("3", `${measure}: p99`, p99, "ms", 60, "p99 ≤ 60 ms"),
  ];
}

/** The same runs on a Spillway that sends its spans to the bench: where a run's time goes. */
async function tracedPhases(ctx: BenchContext, rows: number, runs: number): Promise<string[]> {
  const sw = await ctx.spillway("latency-traced");
  try {
    const { latencies, measuredFrom, measuredTo } = await runLatencies(ctx, sw, "latency-traced", rows, runs);
    const spans = (await ctx.spans(measuredFrom, measuredTo)) ?? [];
    return [
      `then ${runs} runs on a Spillway sending its spans to the bench (what tracing costs shows in its latency): p50 ${fmtMs(percentile(latencies, 50))}, p99 ${fmtMs(percentile(latencies, 99))}`,
      ...formatPhases(runPhases(spans)),
      ...medianRunTimeline(spans),
      ...slowestRunTimelines(spans, 3),
      "the client-side latency minus the RunContinuousExportNow server span is gRPC and the client",
    ];
  } finally {
    await ctx.stopSpillway(sw);
    await ctx.azurite.deleteContainer("latency-traced");
  }
}

/**
 * `count` runs of the export right after the measured ones, with nothing ingested between:
 * what a run costs without data, the floor under #3's figure.
 */
async function emptyRunLatencies(sw: Spillway, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const r = await runNow(sw, "LatencyToLake");
    const ms = performance.now() - t0;
    if (exportedRows(r) !== 0) throw new Error(`a run with nothing new exported ${exportedRows(r)} rows`);
    latencies.push(ms);
  }
  return latencies;
}

/**
 * On `sw`, an export to Parquet in Azurite container `container`, then (after a few warm-up
 * runs not counted) `runs` times: ingest `rows` rows, run the export now. Each run's latency
 * is from the trigger to the response, which comes once the run has committed.
 */
export async function runLatencies(ctx: BenchContext, sw: Spillway, container: string, rows: number, runs: number): Promise<{ latencies: number[]; ingestMs: number[]; measuredFrom: number; measuredTo: number }> {
  ctx.log(`${container}: generating ${runs + WARMUP_RUNS} payloads of ${rows} rows`);
  const payloads: Buffer[] = [];
  for (let i = 0; i < runs + WARMUP_RUNS; i++) payloads.push(await ctx.data.smallPayload(i, rows));
  await createTable(sw, "Latency");
  await createBlobExternalTable(sw, ctx.azurite, "LatencyLake", container, "parquet");
  await createExport(sw, "LatencyToLake", "LatencyLake", EXPORT_QUERY("Latency"), undefined, ctx.settings.sizeLimit);

  const latencies: number[] = [];
  const ingestMs: number[] = [];
  let measuredFrom = 0;
  ctx.log(`${container}: ${WARMUP_RUNS} warm-up + ${runs} runs`);
  for (let i = 0; i < payloads.length; i++) {
    if (i === WARMUP_RUNS) measuredFrom = Date.now();
    const i0 = performance.now();
    const ingested = await sw.query.ingest({ database: DATABASE, table: "Latency", format: "csv", payload: payloads[i]! });
    const t0 = performance.now();
    if (Number(ingested.rowCount) !== rows) throw new Error(`ingested ${ingested.rowCount} rows, expected ${rows}`);
    const r = await runNow(sw, "LatencyToLake");
    const ms = performance.now() - t0;
    if (exportedRows(r) !== rows) throw new Error(`run exported ${exportedRows(r)} rows, expected ${rows}`);
    if (i >= WARMUP_RUNS) {
      latencies.push(ms);
      ingestMs.push(t0 - i0);
    }
  }
  return { latencies, ingestMs, measuredFrom, measuredTo: Date.now() };
}
