import type { BenchContext } from "../context.js";
import { EXPORT_QUERY } from "../datagen.js";
import { fmtMs, fmtRate, median, ratioFigure, type Figure } from "../report.js";
import { PAYLOAD_ROWS, scaled } from "../settings.js";
import { createBlobExternalTable, createExport, createTable, DATABASE, exportedRows, ingestFiles, progressPrinter, runNow } from "../spillway-ops.js";
import { formatPhases, runPhases } from "../trace-collector.js";

const WARMUP_RUNS = 3;
const RUNS = 20;

/**
 * #4: the cost of a run with 1,000 new rows when the table already holds 50M older
 * rows, against the same run on an empty table. One Spillway, one table: first an
 * export over the empty table (median of 20 runs, each after ingesting 1,000 rows);
 * that export is dropped, 50M rows are ingested (100k-row payloads, so 500 extents at
 * full scale), then a new export (which starts from that moment, so the older rows are
 * not its to export) is measured the same way.
 */
export async function costGrowth(ctx: BenchContext): Promise<Figure[]> {
  const { settings, azurite } = ctx;
  const newRows = scaled(settings, 1000);
  const olderRows = scaled(settings, 50_000_000);
  const measure = `cost growth: run with ${newRows.toLocaleString("en-US")} new rows on a table with ${olderRows.toLocaleString("en-US")} older rows vs empty`;

  const payloads: Buffer[] = [];
  for (let i = 0; i < 2 * (RUNS + WARMUP_RUNS); i++) payloads.push(await ctx.data.smallPayload(10_000 + i, newRows));
  ctx.log(`growth: preparing ${olderRows} older rows of payloads`);
  const olderFiles = await ctx.data.payloads(olderRows);

  const sw = await ctx.spillway("growth");
  try {
    await createTable(sw, "Growth");
    await createBlobExternalTable(sw, azurite, "GrowthLake", "growth", "parquet");

    let next = 0;
    const measureRuns = async (exportName: string) => {
      await createExport(sw, exportName, "GrowthLake", EXPORT_QUERY("Growth"), undefined, settings.sizeLimit);
      const from = Date.now();
      const ms: number[] = [];
      for (let i = 0; i < WARMUP_RUNS + RUNS; i++) {
        await sw.query.ingest({ database: DATABASE, table: "Growth", format: "csv", payload: payloads[next++]! });
        const t0 = performance.now();
        const r = await runNow(sw, exportName);
        const dt = performance.now() - t0;
        if (exportedRows(r) !== newRows) throw new Error(`${exportName} exported ${exportedRows(r)} rows, expected ${newRows}`);
        if (i >= WARMUP_RUNS) ms.push(dt);
      }
      return { ms, from, to: Date.now() };
    };

    ctx.log("growth: runs on the empty table");
    const empty = await measureRuns("GrowthWhenEmpty");
    await sw.catalog.dropContinuousExport({ database: DATABASE, name: "GrowthWhenEmpty" });

    ctx.log(`growth: ingesting ${olderRows} older rows`);
    const ingest = await ingestFiles(sw, "Growth", olderFiles, settings.ingestConcurrency, progressPrinter("ingest older rows"));

    ctx.log("growth: runs on the full table");
    const full = await measureRuns("GrowthWhenFull");

    const notes = [
      `median of ${RUNS} runs each (after ${WARMUP_RUNS} warm-up runs); empty: min ${fmtMs(Math.min(...empty.ms))} max ${fmtMs(Math.max(...empty.ms))}; with older rows: min ${fmtMs(Math.min(...full.ms))} max ${fmtMs(Math.max(...full.ms))}`,
      `older rows: ${olderFiles.length} payloads of up to ${PAYLOAD_ROWS.toLocaleString("en-US")} rows (≥ ${olderFiles.length} extents), ingested in ${fmtMs(ingest.ms)} (${fmtRate(ingest.rows, ingest.ms)})`,
      ...(await phaseNotes(ctx, "empty", empty)),
      ...(await phaseNotes(ctx, "older rows", full)),
    ];
    return [ratioFigure("4", measure, median(full.ms), median(empty.ms), "ms", 1.2, notes)];
  } finally {
    await ctx.stopSpillway(sw);
    await azurite.deleteContainer("growth");
  }
}

async function phaseNotes(ctx: BenchContext, label: string, window: { from: number; to: number }): Promise<string[]> {
  const spans = await ctx.spans(window.from, window.to);
  if (!spans) return [];
  const [header, ...lines] = formatPhases(runPhases(spans));
  return [`${label}: ${header}`, ...lines];
}
