import { DuckBaseline } from "../baselines.js";
import type { BenchContext } from "../context.js";
import { fmtMs, fmtRate, median, MiB, ratioFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createTable, ingestFiles, progressPrinter } from "../spillway-ops.js";
import { spanStats } from "../trace-collector.js";

/**
 * #5: 5M rows as 100k-row CSV payloads through QueryService.Ingest (as many calls in
 * flight as the machine has cores, BENCH_INGEST_CONCURRENCY), against DuckDB reading
 * the same files into a table of a database file in one statement, checkpointed.
 */
export async function ingestion(ctx: BenchContext): Promise<Figure[]> {
  const { settings } = ctx;
  const rows = scaled(settings, 5_000_000);
  const measure = `ingestion of ${rows.toLocaleString("en-US")} rows as CSV payloads of ≤100k rows through Ingest`;
  const files = await ctx.data.payloads(rows);
  const bytes = ctx.data.bytesOf(files);

  const sw = await ctx.spillway("ingest");
  let spillway: Awaited<ReturnType<typeof ingestFiles>>;
  const from = Date.now();
  try {
    await createTable(sw, "Ingested");
    ctx.log(`ingest: ${files.length} payloads into Spillway`);
    spillway = await ingestFiles(sw, "Ingested", files, settings.ingestConcurrency, progressPrinter("ingest"));
  } finally {
    await ctx.stopSpillway(sw);
  }
  const to = Date.now();

  ctx.log("ingest: DuckDB reading the same files");
  const baseline = new DuckBaseline(ctx.dir("baseline-ingest"));
  let base;
  try {
    base = await baseline.loadTable("Ingested", files);
  } finally {
    baseline.destroy();
  }
  if (base.rows !== rows) throw new Error(`baseline loaded ${base.rows} rows, expected ${rows}`);

  const notes = [
    `${files.length} payloads, ${(bytes / MiB).toFixed(0)} MiB of CSV; ${settings.ingestConcurrency} Ingest calls in flight; call median ${fmtMs(median(spillway.callMs))}, max ${fmtMs(Math.max(...spillway.callMs))}`,
    `Spillway ${fmtRate(spillway.rows, spillway.ms)}; DuckDB ${fmtRate(base.rows, base.ms)} (CREATE TABLE, INSERT … FROM read_csv([all files]), CHECKPOINT in a database file)`,
  ];
  const spans = await ctx.spans(from, to);
  if (spans) {
    for (const name of ["spillway.query.v1.QueryService/Ingest", "spillway.catalog.v1.CatalogService/GetTable", "spillway.cursor.v1.CursorService/CommitExtent"]) {
      const s = spanStats(spans, name);
      if (s) notes.push(`span ${name.split("/")[1]}: median ${fmtMs(s.median)}, max ${fmtMs(s.max)} over ${s.count}`);
    }
  }
  return [ratioFigure("5", measure, spillway.ms / 1000, base.ms / 1000, "s", 1.5, notes)];
}
