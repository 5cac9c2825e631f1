import { DuckBaseline, type ExportFormat } from "../baselines.js";
import type { BenchContext } from "../context.js";
import { EXPORT_QUERY } from "../datagen.js";
import { resetPeakRss, sampleRss, statusBytes } from "../memory.js";
import type { Spillway } from "../processes.js";
import { firstLine, fmtMs, fmtRate, limitFigure, MiB, notMeasured, ratioFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createBlobExternalTable, createExport, createTable, exportedBytes, exportedRows, ingestFiles, progressPrinter, runNow } from "../spillway-ops.js";
import { formatPhases, runPhases } from "../trace-collector.js";

const FORMATS: Record<ExportFormat, { id: string; exportName: string; lake: string; container: string; label: string; maxRatio: number }> = {
  // #1 must beat "COPY, then upload" (the run encodes in one pass and spreads its uploads).
  parquet: { id: "1", exportName: "BulkToParquet", lake: "BulkParquetLake", container: "bulk-parquet", label: "Parquet", maxRatio: 0.9 },
  "csv-gzip": { id: "2", exportName: "BulkToCsvGz", lake: "BulkCsvLake", container: "bulk-csv", label: "CSV gzip", maxRatio: 1.3 },
};

/**
 * #1, #2 and #7: one table of 10M rows (ingested as 100k-row CSV payloads), one run of
 * an export to Parquet and one to gzip CSV in Azurite, each against DuckDB's COPY of the
 * same query to a local file plus one upload; peak RSS of Spillway during the Parquet run.
 */
export async function bulkExport(ctx: BenchContext): Promise<Figure[]> {
  const { settings, azurite } = ctx;
  const want = settings.only;
  const formats: ExportFormat[] = [];
  if (want.has(1) || want.has(7)) formats.push("parquet");
  if (want.has(2)) formats.push("csv-gzip");
  const rows = scaled(settings, 10_000_000);
  const label = (f: ExportFormat) => `one run exporting ${rows.toLocaleString("en-US")} rows to ${FORMATS[f].label} in Azurite`;

  ctx.log(`bulk: generating ${rows} rows of CSV payloads`);
  const g0 = performance.now();
  const files = await ctx.data.payloads(rows);
  ctx.log(`bulk: ${files.length} payload files, ${(ctx.data.bytesOf(files) / MiB).toFixed(0)} MiB, in ${fmtMs(performance.now() - g0)}`);

  const figures: Figure[] = [];
  const sw = await ctx.spillway("bulk");
  const baseline = want.has(1) || want.has(2) ? new DuckBaseline(ctx.dir("baseline-bulk")) : undefined;
  try {
    await createTable(sw, "Bulk");
    for (const f of formats) {
      await createBlobExternalTable(sw, azurite, FORMATS[f].lake, FORMATS[f].container, f);
      await createExport(sw, FORMATS[f].exportName, FORMATS[f].lake, EXPORT_QUERY("Bulk"), undefined, settings.sizeLimit);
    }
    ctx.log(`bulk: ingesting ${rows} rows into Spillway (${settings.ingestConcurrency} calls in flight)`);
    const ingest = await ingestFiles(sw, "Bulk", files, settings.ingestConcurrency, progressPrinter("ingest"));
    const ingestNote = `setup: Spillway ingested ${ingest.rows.toLocaleString("en-US")} rows in ${ingest.calls} IngestStream calls in ${fmtMs(ingest.ms)} (${fmtRate(ingest.rows, ingest.ms)})`;

    let loadNote = "";
    if (baseline) {
      ctx.log("bulk: loading the same files into the baseline DuckDB table");
      const load = await baseline.loadTable("Bulk", files);
      loadNote = `setup: DuckDB loaded the same files in ${fmtMs(load.ms)} (${fmtRate(load.rows, load.ms)})`;
    }

    for (const f of formats) {
      const spec = FORMATS[f];
      const notes = [ingestNote, ...(loadNote ? [loadNote] : [])];
      notes.push(settings.sizeLimit ? `exports created with sizeLimit ${settings.sizeLimit} bytes (BENCH_SIZE_LIMIT)` : "exports created with Spillway's default sizeLimit");
      let base: Awaited<ReturnType<DuckBaseline["exportAndUpload"]>> | undefined;
      if (baseline && (f === "csv-gzip" || want.has(1))) {
        const container = `baseline-${spec.container}`;
        await azurite.createContainer(container);
        ctx.log(`bulk: baseline ${spec.label}: DuckDB COPY + one upload`);
        base = await baseline.exportAndUpload("Bulk", f, azurite, container);
        await azurite.deleteContainer(container);
        if (base.rows !== rows) throw new Error(`baseline wrote ${base.rows} rows, expected ${rows}`);
        notes.push(`baseline: COPY to a local file ${fmtMs(base.copyMs)} + upload ${fmtMs(base.uploadMs)}; file ${(base.bytes / MiB).toFixed(1)} MiB`);
      }

      ctx.log(`bulk: Spillway run of ${spec.exportName}`);
      const run = await measuredRun(sw, spec.exportName, f === "parquet" ? azurite.pid : undefined);
      const rss = run.rss;
      const memNotes = [
        `${rss.samples} samples of VmRSS (Spillway's process tree) every 100 ms during the run of #1`,
        rss.hwmBytes !== undefined ? `kernel peak (VmHWM after resetting it before the run): ${(rss.hwmBytes / MiB).toFixed(0)} MiB` : "kernel peak (VmHWM) could not be reset; not shown",
        `Spillway RSS before the run ${(rss.beforeBytes / MiB).toFixed(0)} MiB`,
        `Azurite's own peak RSS meanwhile (not counted): ${(rss.azuritePeakBytes / MiB).toFixed(0)} MiB`,
      ];
      const peakMiB = Math.max(rss.peakBytes, rss.hwmBytes ?? 0) / MiB;
      if (run.error !== undefined) {
        const why = `could not be measured: the Spillway run failed after ${fmtMs(run.ms)}: ${run.error}`;
        if (f === "csv-gzip" || want.has(1)) figures.push({ ...notMeasured(spec.id, label(f), `≤ ${spec.maxRatio}×`, why), notes: [why, ...notes] });
        if (f === "parquet" && want.has(7)) figures.push(notMeasured("7", "peak memory (RSS of Spillway) during #1", "≤ 1024 MiB", `${why} (peak RSS until it failed: ${peakMiB.toFixed(0)} MiB)`));
      } else {
        if (run.rows !== rows) throw new Error(`${spec.exportName} exported ${run.rows} rows, expected ${rows}`);
        notes.push(`Spillway: ${run.artifacts} artifact(s), ${(run.bytes / MiB).toFixed(1)} MiB, ${run.rows.toLocaleString("en-US")} rows, run ${fmtMs(run.ms)}`);
        const spans = await ctx.spans(run.startedAt, run.startedAt + run.ms);
        if (spans) notes.push(...formatPhases(runPhases(spans)));
        else notes.push("phases not measured (BENCH_TRACE=0)");
        if (f === "csv-gzip" || want.has(1)) {
          figures.push(base ? ratioFigure(spec.id, label(f), run.ms / 1000, (base.copyMs + base.uploadMs) / 1000, "s", spec.maxRatio, notes) : notMeasured(spec.id, label(f), `≤ ${spec.maxRatio}×`, "no baseline"));
        }
        if (f === "parquet" && want.has(7)) figures.push(limitFigure("7", "peak memory (RSS of Spillway) during #1", peakMiB, "MiB", 1024, "≤ 1024 MiB", memNotes));
      }
      await azurite.deleteContainer(spec.container);
    }
  } finally {
    await ctx.stopSpillway(sw);
    baseline?.destroy();
  }
  return figures;
}

async function measuredRun(sw: Spillway, exportName: string, azuritePid?: number) {
  const hwmReset = resetPeakRss(sw.pid);
  const beforeBytes = statusBytes(sw.pid, "VmRSS") ?? 0;
  const sampler = sampleRss([sw.pid, ...(azuritePid ? [azuritePid] : [])]);
  const startedAt = Date.now();
  const t0 = performance.now();
  let r: Awaited<ReturnType<typeof runNow>> | undefined;
  let error: string | undefined;
  try {
    r = await runNow(sw, exportName);
  } catch (err) {
    error = firstLine(err);
  }
  const ms = performance.now() - t0;
  const sampled = sampler.stop();
  const hwm = hwmReset ? statusBytes(sw.pid, "VmHWM") : undefined;
  return {
    ms,
    startedAt,
    error,
    rows: r ? exportedRows(r) : 0,
    bytes: r ? exportedBytes(r) : 0,
    artifacts: r?.artifacts.length ?? 0,
    rss: {
      peakBytes: sampled.peakByRoot[sw.pid] ?? 0,
      azuritePeakBytes: azuritePid ? (sampled.peakByRoot[azuritePid] ?? 0) : 0,
      samples: sampled.samples,
      hwmBytes: hwm,
      beforeBytes,
    },
  };
}
