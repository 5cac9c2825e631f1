import type { BenchContext } from "../context.js";
import { EXPORT_QUERY } from "../datagen.js";
import { fmtMs, fmtRate, median, ratioFigure, reportedFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createBlobExternalTable, createExport, createTable, DATABASE, ingestFiles, progressPrinter } from "../spillway-ops.js";
import type { Spillway } from "../processes.js";

const QUERY_RUNS = 7;

/**
 * #10 (issue #16), history and replay:
 * - 10: a managed backfill of 10M rows against a one-shot export of the same rows (the
 *   same query, into the same kind of table): both go through the same run pipeline, the
 *   backfill in batches of about sizeLimit bytes of extents, each committed on its own;
 * - 10b: a cursor-filtered query over a 50M-row table, selecting its last tenth, against the
 *   same query over a table holding only those rows: what extent pruning saves.
 */
export async function history(ctx: BenchContext): Promise<Figure[]> {
  return [...(await backfillVersusOneShot(ctx)), ...(await cursorPruning(ctx))];
}

async function backfillVersusOneShot(ctx: BenchContext): Promise<Figure[]> {
  const { settings, azurite } = ctx;
  const rows = scaled(settings, 10_000_000);
  const measure = `backfill of ${rows.toLocaleString("en-US")} rows vs a one-shot export of the same rows`;
  const files = await ctx.data.payloads(rows);
  const sw = await ctx.spillway("history");
  try {
    await createTable(sw, "History");
    const ingest = await ingestFiles(sw, "History", files, settings.ingestConcurrency, progressPrinter("ingest history"));
    await createBlobExternalTable(sw, azurite, "OnceLake", "history-once", "parquet");
    await createBlobExternalTable(sw, azurite, "BackfillLake", "history-backfill", "parquet");
    // The export starts after every row: all of them are the backfill's.
    await createExport(sw, "Late", "BackfillLake", EXPORT_QUERY("History"), undefined, settings.sizeLimit);

    ctx.log("history: one-shot export");
    const t0 = performance.now();
    const once = await sw.query.exportToTable({ database: DATABASE, externalTable: "OnceLake", query: EXPORT_QUERY("History"), properties: { sizeLimit: settings.sizeLimit ?? 0n } });
    const onceMs = performance.now() - t0;
    const onceRows = once.artifacts.reduce((n, a) => n + Number(a.numRecords), 0);
    if (onceRows !== rows) throw new Error(`one-shot export wrote ${onceRows} rows, expected ${rows}`);

    ctx.log("history: backfill");
    const t1 = performance.now();
    await sw.catalog.backfillContinuousExport({ database: DATABASE, name: "Late" });
    const done = await untilBackfilled(sw);
    const backfillMs = performance.now() - t1;
    if (done.state !== "Completed" || Number(done.recordsDone) !== rows) throw new Error(`backfill ended ${done.state} with ${done.recordsDone} of ${rows} rows: ${done.status}`);
    const notes = [
      `${files.length} extents ingested in ${fmtMs(ingest.ms)} (${fmtRate(ingest.rows, ingest.ms)}); one-shot: ${once.artifacts.length} artifact(s) in ${fmtMs(onceMs)}`,
      `backfill: ${done.batchesDone} batches of about ${settings.sizeLimit ?? "1 GB (the default sizeLimit)"} bytes of extents in ${fmtMs(backfillMs)}, polled every 100 ms`,
    ];
    return [ratioFigure("10", measure, backfillMs / 1000, onceMs / 1000, "s", 1.2, notes)];
  } finally {
    await ctx.stopSpillway(sw);
    await azurite.deleteContainer("history-once");
    await azurite.deleteContainer("history-backfill");
  }
}

async function untilBackfilled(sw: Spillway) {
  for (;;) {
    const b = (await sw.catalog.showContinuousExport({ database: DATABASE, name: "Late" })).export!.backfill!;
    if (b.state !== "InProgress") return b;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function cursorPruning(ctx: BenchContext): Promise<Figure[]> {
  const { settings } = ctx;
  const rows = scaled(settings, 50_000_000);
  const measure = `query over the last tenth of a ${rows.toLocaleString("en-US")}-row table by cursor_after vs over a table of only those rows`;
  const files = await ctx.data.payloads(rows);
  const tail = files.slice(Math.floor(files.length * 0.9));
  const sw = await ctx.spillway("pruning");
  try {
    await createTable(sw, "Big");
    await createTable(sw, "Tail");
    const head = await ingestFiles(sw, "Big", files.slice(0, files.length - tail.length), settings.ingestConcurrency, progressPrinter("ingest big (head)"));
    let cursor = "";
    for await (const batch of sw.query.query({ database: DATABASE, query: "SELECT cursor_current() AS c", queryLanguage: "sql" })) if (batch.rows.length) cursor = String(batch.rows[0]!.values[0]!.kind.value);
    await ingestFiles(sw, "Big", tail, settings.ingestConcurrency, progressPrinter("ingest big (tail)"));
    await ingestFiles(sw, "Tail", tail, settings.ingestConcurrency, progressPrinter("ingest tail"));
    const tailRows = tail.reduce((n, f) => n + f.rows, 0);
    const timed = async (sql: string) => {
      const ms: number[] = [];
      let answer = "";
      for (let i = 0; i < QUERY_RUNS + 1; i++) {
        const t0 = performance.now();
        const out: string[] = [];
        for await (const batch of sw.query.query({ database: DATABASE, query: sql, queryLanguage: "sql" })) out.push(JSON.stringify(batch.rows.map((r) => r.values.map((v) => v.kind.value))));
        if (i > 0) ms.push(performance.now() - t0);
        answer = out.join("");
      }
      return { ms: median(ms), answer };
    };
    const filtered = await timed(`SELECT count(*) AS n, sum(Id) AS total FROM Big WHERE cursor_after('${cursor}')`);
    const alone = await timed("SELECT count(*) AS n, sum(Id) AS total FROM Tail");
    if (filtered.answer !== alone.answer) throw new Error(`the filtered query answered ${filtered.answer}, the tail table ${alone.answer}`);
    const notes = [
      `${files.length} extents, of which ${tail.length} (${tailRows.toLocaleString("en-US")} rows) after the cursor; median of ${QUERY_RUNS} queries each after one warm-up`,
      `head ingested in ${fmtMs(head.ms)}; filtered ${fmtMs(filtered.ms)}, tail table ${fmtMs(alone.ms)}`,
    ];
    return [{ ...ratioFigure("10b", measure, filtered.ms, alone.ms, "ms", 1.5, notes), target: "reported (≈ 1× is pruning working)", verdict: "REPORTED" }, reportedFigure("10c", "the same query over the whole table", (await timed("SELECT count(*) AS n, sum(Id) AS total FROM Big")).ms, "ms")];
  } finally {
    await ctx.stopSpillway(sw);
  }
}
