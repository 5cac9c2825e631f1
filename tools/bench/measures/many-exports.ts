import { timestampDate } from "@bufbuild/protobuf/wkt";
import { DEFAULTS } from "@spillway/config";
import type { BenchContext } from "../context.js";
import { EXPORT_QUERY } from "../datagen.js";
import { sleep } from "../processes.js";
import { fmtMs, limitFigure, median, percentile, reportedFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createBlobExternalTable, createExport, createTable, DATABASE } from "../spillway-ops.js";
import { formatPhases, runPhases, spanStats } from "../trace-collector.js";

const INTERVAL_S = 10;

/** One scenario of many exports: #6 has a target, #6b (five times as many exports) is reported. */
interface Shape {
  id: string;
  tables: number;
  exportsPerTable: number;
  /** Max lateness target in seconds; none: reported only. */
  maxLatenessS?: number;
}

const SHAPES: Shape[] = [
  { id: "6", tables: 20, exportsPerTable: 10, maxLatenessS: 12 },
  { id: "6b", tables: 50, exportsPerTable: 20 },
];
/** Trickle: payloads per second over all tables (round robin), rows per payload at scale 1. */
const TRICKLE_PER_SECOND = 4;
const TRICKLE_ROWS = 250;
const IN_FLIGHT_LIMIT = 8;

const pad = (n: number) => String(n).padStart(2, "0");

/**
 * #6: 200 continuous exports (10 per table over 20 fact tables, each its own filter of
 * the table) with a 10 s interval, run by Spillway's own scheduler while a steady trickle
 * of ingestion goes on, for 3 minutes (scaled, at least 20 s) after one interval of
 * warm-up. Every second, each export's lateness is now − exportedTo (the ingestion time
 * its checkpoint stands for), read from ListContinuousExports, which returns the same
 * ContinuousExport records as ShowContinuousExport for all 200 in one call (200 Show
 * calls a second would themselves load the server under test). An export is starved if
 * it completed no run in the window.
 */
export async function manyExports(ctx: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const shape of SHAPES.filter((s) => s.id !== "6b" || ctx.settings.with6b)) figures.push(...(await manyExportsOf(ctx, shape)));
  return figures;
}

async function manyExportsOf(ctx: BenchContext, shape: Shape): Promise<Figure[]> {
  const { settings, azurite } = ctx;
  const { tables: TABLES, exportsPerTable: EXPORTS_PER_TABLE } = shape;
  const windowS = Math.max(20, Math.round(180 * settings.scale));
  const rowsPerPayload = scaled(settings, TRICKLE_ROWS);
  const exportsTotal = TABLES * EXPORTS_PER_TABLE;
  const measure = `${exportsTotal} exports over ${TABLES} tables, ${INTERVAL_S} s interval, trickle ingestion, ${windowS} s`;

  const payloads: Buffer[] = [];
  for (let i = 0; i < 40; i++) payloads.push(await ctx.data.smallPayload(20_000 + i, rowsPerPayload));
  const tables = Array.from({ length: TABLES }, (_, t) => `Fact${pad(t)}`);

  const sw = await ctx.spillway(`many-${shape.id}`);
  let trickleTimer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<unknown>>();
  try {
    ctx.log(`many: ${TABLES} tables, ${TABLES} external tables, ${exportsTotal} exports`);
    for (const [t, table] of tables.entries()) {
      await createTable(sw, table);
      await createBlobExternalTable(sw, azurite, `Lake${pad(t)}`, `many-${pad(t)}`, "parquet");
      await sw.query.ingest({ database: DATABASE, table, format: "csv", payload: payloads[t % payloads.length]! });
    }

    // The trickle: one payload every 1/TRICKLE_PER_SECOND s, tables in turn.
    const ingestMs: number[] = [];
    const ingestErrors: string[] = [];
    let skipped = 0;
    let k = 0;
    trickleTimer = setInterval(() => {
      if (inFlight.size >= IN_FLIGHT_LIMIT) {
        skipped++;
        return;
      }
      const table = tables[k % TABLES]!;
      const payload = payloads[k % payloads.length]!;
      k++;
      const t0 = performance.now();
      const call: Promise<unknown> = sw.query
        .ingest({ database: DATABASE, table, format: "csv", payload })
        .then(() => ingestMs.push(performance.now() - t0))
        .catch((err: Error) => ingestErrors.push(err.message))
        .finally(() => inFlight.delete(call));
      inFlight.add(call);
    }, 1000 / TRICKLE_PER_SECOND);

    const c0 = performance.now();
    for (const [t, table] of tables.entries()) {
      for (let j = 0; j < EXPORTS_PER_TABLE; j++) {
        await createExport(sw, `Export${pad(t)}_${j}`, `Lake${pad(t)}`, `${EXPORT_QUERY(table)} WHERE Id % ${EXPORTS_PER_TABLE} = ${j}`, BigInt(INTERVAL_S), settings.sizeLimit);
      }
    }
    const createMs = performance.now() - c0;
    ctx.log(`many: exports created in ${fmtMs(createMs)}; ${INTERVAL_S} s warm-up, then a ${windowS} s window`);

    const sample = async () => {
      const { exports } = await sw.catalog.listContinuousExports({ database: DATABASE });
      const now = Date.now();
      return { now, exports };
    };

    // Warm-up: the first runs fall due together one interval after creation.
    let warmupMax = 0;
    const warmupEnd = Date.now() + INTERVAL_S * 1000;
    while (Date.now() < warmupEnd) {
      const s = await sample();
      for (const e of s.exports) if (e.exportedTo) warmupMax = Math.max(warmupMax, s.now - timestampDate(e.exportedTo).getTime());
      await sleep(1000);
    }

    const windowStart = Date.now();
    const windowEnd = windowStart + windowS * 1000;
    const initial = new Map<string, string>();
    const completed = new Set<string>();
    const failed = new Set<string>();
    const lateness: number[] = [];
    const sampleMs: number[] = [];
    let worst = { ms: 0, export: "", at: 0 };
    let first = true;
    for (let next = windowStart; Date.now() < windowEnd; next += 1000) {
      await sleep(Math.max(0, next - Date.now()));
      const s0 = performance.now();
      const s = await sample();
      sampleMs.push(performance.now() - s0);
      for (const e of s.exports) {
        if (first) initial.set(e.name, e.checkpointCursor);
        if (e.checkpointCursor !== initial.get(e.name)) completed.add(e.name);
        if (e.lastRunResult === "Completed" && e.lastRunTime && timestampDate(e.lastRunTime).getTime() >= windowStart) completed.add(e.name);
        if (e.lastRunResult === "Failed") failed.add(e.name);
        if (!e.exportedTo) continue;
        const late = s.now - timestampDate(e.exportedTo).getTime();
        lateness.push(late);
        if (late > worst.ms) worst = { ms: late, export: e.name, at: s.now - windowStart };
      }
      first = false;
    }
    const windowStop = Date.now();
    clearInterval(trickleTimer);
    trickleTimer = undefined;
    await Promise.allSettled([...inFlight]);

    const starved = [...initial.keys()].filter((n) => !completed.has(n));
    const notes = [
      `${initial.size} exports seen; ${lateness.length} lateness samples (one per export per second); lateness p50 ${fmtMs(percentile(lateness, 50))}, p99 ${fmtMs(percentile(lateness, 99))}, max ${fmtMs(worst.ms)} (${worst.export} at +${(worst.at / 1000).toFixed(0)} s)`,
      `during the ${INTERVAL_S} s warm-up (not counted) max lateness was ${fmtMs(warmupMax)}; creating the ${exportsTotal} exports took ${fmtMs(createMs)}`,
      `trickle: ${ingestMs.length} payloads of ${rowsPerPayload} rows (${TRICKLE_PER_SECOND}/s asked), Ingest median ${fmtMs(median(ingestMs))}, max ${fmtMs(Math.max(0, ...ingestMs))}; ${skipped} skipped (${IN_FLIGHT_LIMIT} in flight), ${ingestErrors.length} failed${ingestErrors.length ? `: ${ingestErrors[0]}` : ""}`,
      `ListContinuousExports (the sampler) median ${fmtMs(median(sampleMs))}, max ${fmtMs(Math.max(...sampleMs))}`,
      `exports whose last run had failed at some sample: ${failed.size}`,
    ];
    const spans = await ctx.spans(windowStart, windowStop);
    if (spans) {
      const runs = spanStats(spans, "continuous_export.run");
      const needed = exportsTotal / INTERVAL_S;
      if (runs) {
        const runDurations = spans.filter((s) => s.name === "continuous_export.run").map((s) => s.durationMs);
        notes.push(
          `runs started in the window: ${runs.count} (${(runs.count / ((windowStop - windowStart) / 1000)).toFixed(1)}/s; ${needed}/s needed to run each export every ${INTERVAL_S} s); run median ${fmtMs(runs.median)}, p99 ${fmtMs(percentile(runDurations, 99))}, max ${fmtMs(runs.max)}`,
        );
        const perSecond = new Map<number, number>();
        for (const s of spans) if (s.name === "continuous_export.run") perSecond.set(Math.floor(s.startMs / 1000), (perSecond.get(Math.floor(s.startMs / 1000)) ?? 0) + 1);
        const busy = runDurations.reduce((a, b) => a + b, 0) / (windowStop - windowStart);
        notes.push(
          `at most ${Math.max(...perSecond.values())} runs started in any one second; runs were in flight ${(100 * busy / DEFAULTS.maxConcurrentRuns).toFixed(0)}% of the time of ${DEFAULTS.maxConcurrentRuns} slots (Spillway runs with its defaults: --max-concurrent-runs ${DEFAULTS.maxConcurrentRuns}, --scheduler-tick ${DEFAULTS.schedulerTickMs / 1000}s)`,
        );
      } else {
        notes.push("no run spans received in the window");
      }
      const phases = runPhases(spans);
      notes.push(...formatPhases(phases));
      const ticks = spans.filter((s) => s.name === "spillway.catalog.v1.CatalogService/ListExportSpecs" && !s.parentSpanId).map((s) => s.durationMs);
      if (ticks.length) notes.push(`scheduler tick lookups (ListExportSpecs of all ${exportsTotal} exports): ${ticks.length}, median ${fmtMs(median(ticks))}, max ${fmtMs(Math.max(...ticks))}`);
    }
    const starvedNotes = starved.length ? [`starved: ${starved.slice(0, 10).join(", ")}${starved.length > 10 ? ", …" : ""}`] : [];
    if (shape.maxLatenessS === undefined) {
      return [
        reportedFigure(shape.id, `${measure}: lateness p50`, percentile(lateness, 50) / 1000, "s", notes),
        reportedFigure(shape.id, `${measure}: lateness p99`, percentile(lateness, 99) / 1000, "s"),
        reportedFigure(shape.id, `${measure}: max lateness`, worst.ms / 1000, "s"),
        reportedFigure(shape.id, `${measure}: starved exports`, starved.length, "", starvedNotes),
      ];
    }
    return [
      limitFigure(shape.id, `${measure}: max lateness`, worst.ms / 1000, "s", shape.maxLatenessS, `≤ ${shape.maxLatenessS} s`, notes),
      limitFigure(shape.id, `${measure}: starved exports`, starved.length, "", 0, "none", starvedNotes),
    ];
  } finally {
    if (trickleTimer) clearInterval(trickleTimer);
    await Promise.allSettled([...inFlight]);
    await ctx.stopSpillway(sw);
    for (let t = 0; t < TABLES; t++) await azurite.deleteContainer(`many-${pad(t)}`);
  }
}
