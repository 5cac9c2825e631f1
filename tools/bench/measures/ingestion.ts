import { DuckBaseline } from "../baselines.js";
import type { BenchContext } from "../context.js";
import { fmtMs, fmtRate, median, MiB, ratioFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import type { PayloadFile } from "../datagen.js";
import { createTable, ingestFiles, progressPrinter, type IngestRpc } from "../spillway-ops.js";
import { spanStats } from "../trace-collector.js";

/**
 * #5: 5M rows as 100k-row CSV payloads (as many calls in flight as the machine has cores,
 * BENCH_INGEST_CONCURRENCY), against DuckDB reading the same files into a table of a
 * database file in one statement, checkpointed. Measured twice, each on a fresh Spillway:
 * through IngestStream, each file read and sent in 1 MiB messages, as a client holding
 * files would; and through Ingest, each file whole in one message.
 */
export async function ingestion(ctx: BenchContext): Promise<Figure[]> {
  const { settings } = ctx;
  const rows = scaled(settings, 5_000_000);
  const files = await ctx.data.payloads(rows);
  const bytes = ctx.data.bytesOf(files);
  const runs = [];
  for (const rpc of ["IngestStream", "Ingest"] as const) runs.push(await ingestThrough(ctx, rpc, files));

  ctx.log("ingest: DuckDB reading the same files");
  const baseline = new DuckBaseline(ctx.dir("baseline-ingest"));
  let base;
  try {
    base = await baseline.loadTable("Ingested", files);
  } finally {
    baseline.destroy();
  }
  if (base.rows !== rows) throw new Error(`baseline loaded ${base.rows} rows, expected ${rows}`);

  return runs.map(({ rpc, result, spanNotes }, i) =>
    ratioFigure(i === 0 ? "5" : "5b", `ingestion of ${rows.toLocaleString("en-US")} rows as CSV payloads of ≤100k rows through ${rpc}`, result.ms / 1000, base.ms / 1000, "s", 1.5, [
      `${files.length} payloads, ${(bytes / MiB).toFixed(0)} MiB of CSV, ${rpc === "Ingest" ? "each in one message" : "each in 1 MiB messages"}; ${settings.ingestConcurrency} calls in flight; call median ${fmtMs(median(result.callMs))}, max ${fmtMs(Math.max(...result.callMs))}`,
      `Spillway ${fmtRate(result.rows, result.ms)}; DuckDB ${fmtRate(base.rows, base.ms)} (CREATE TABLE, INSERT … FROM read_csv([all files]), CHECKPOINT in a database file)`,
      ...spanNotes,
    ]),
  );
}

async function ingestThrough(ctx: BenchContext, rpc: IngestRpc, files: PayloadFile[]) {
  const sw = await ctx.spillway(`ingest-${rpc}`);
  let result: Awaited<ReturnType<typeof ingestFiles>>;
  const from = Date.now();
  try {
    await createTable(sw, "Ingested");
    ctx.log(`ingest: ${files.length} payloads into Spillway through ${rpc}`);
    result = await ingestFiles(sw, "Ingested", files, ctx.settings.ingestConcurrency, progressPrinter(`ingest (${rpc})`), rpc);
  } finally {
    await ctx.stopSpillway(sw);
  }
  const spans = await ctx.spans(from, Date.now());
  const spanNotes: string[] = [];
  if (spans) {
    for (const name of [`spillway.query.v1.QueryService/${rpc}`, "spillway.catalog.v1.CatalogService/GetTable", "spillway.cursor.v1.CursorService/CommitExtent"]) {
      const s = spanStats(spans, name);
      if (s) spanNotes.push(`span ${name.split("/")[1]}: median ${fmtMs(s.median)}, max ${fmtMs(s.max)} over ${s.count}`);
    }
  }
  return { rpc, result, spanNotes };
}
