import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { usePostgres, type Postgres } from "../../postgres/postgres-server.js";
import type { BenchContext } from "../context.js";
import { EXPORT_QUERY, type PayloadFile } from "../datagen.js";
import type { Spillway } from "../processes.js";
import { fmtMs, fmtRate, percentile, reportedFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createBlobExternalTable, createExport, createTable, exportedRows, ingestFiles, runNow } from "../spillway-ops.js";
import { runLatencies } from "./run-latency.js";

const NODE_COUNTS = [1, 2, 3];

/**
 * #9, Spillway on several nodes (issue "Beyond one machine"): run latency with the stores in
 * PostgreSQL against the embedded DuckDB files, and one bulk run to Parquet on 1, 2 and 3
 * nodes sharing PostgreSQL and an extent store in Azurite (the run split over the nodes),
 * with the CPU seconds every node spent per million rows beside the wall time: on this
 * machine's two cores, more nodes share the same CPUs.
 */
export async function manyNodes(ctx: BenchContext): Promise<Figure[]> {
  ctx.log("nodes: starting PostgreSQL from npm (durable: commits wait for the disk)");
  const postgres = await usePostgres({ durable: true });
  try {
    return [...(await latencyOnPostgres(ctx, postgres)), ...(await bulkOnNodes(ctx, postgres))];
  } finally {
    await postgres.stop();
  }
}

async function latencyOnPostgres(ctx: BenchContext, postgres: Postgres): Promise<Figure[]> {
  const rows = scaled(ctx.settings, 1000);
  const runs = Math.max(20, Math.floor(ctx.settings.latencyRuns / 2));
  const series: Record<string, number[]> = {};
  for (const [store, env] of [["embedded", undefined], ["postgres", { SPILLWAY_METADATA_URL: await postgres.createDatabase() }]] as const) {
    // Untraced, as #3 measures: the two stores under the same conditions.
    const sw = await ctx.spillway(`latency-${store}`, env, false);
    try {
      series[store] = (await runLatencies(ctx, sw, `latency-${store}`, rows, runs)).latencies;
    } finally {
      await ctx.stopSpillway(sw);
      await ctx.azurite.deleteContainer(`latency-${store}`);
    }
  }
  const [embedded, onPostgres] = [series.embedded!, series.postgres!];
  const notes = [
    `the same ${runs} runs (ingest ${rows} rows, then RunContinuousExportNow) on one process with its stores in DuckDB files, then in PostgreSQL 18 from npm on this machine (fsync on)`,
    `embedded: p50 ${fmtMs(percentile(embedded, 50))}, p99 ${fmtMs(percentile(embedded, 99))}; PostgreSQL: p50 ${fmtMs(percentile(onPostgres, 50))}, p99 ${fmtMs(percentile(onPostgres, 99))}`,
  ];
  return [
    { ...reportedFigure("9", `run latency with the stores in PostgreSQL: p50`, percentile(onPostgres, 50), "ms", notes), baseline: percentile(embedded, 50), ratio: percentile(onPostgres, 50) / percentile(embedded, 50) },
    { ...reportedFigure("9", `run latency with the stores in PostgreSQL: p99`, percentile(onPostgres, 99), "ms"), baseline: percentile(embedded, 99), ratio: percentile(onPostgres, 99) / percentile(embedded, 99) },
  ];
}

async function bulkOnNodes(ctx: BenchContext, postgres: Postgres): Promise<Figure[]> {
  const rows = scaled(ctx.settings, 4_000_000);
  const files = await ctx.data.payloads(rows);
  const tick = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const cpuSeconds = (nodes: Spillway[]) =>
    nodes.reduce((sum, n) => {
      // utime and stime of every thread of the process (DuckDB's included), fields 14 and 15.
      const fields = readFileSync(`/proc/${n.pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
      return sum + (Number(fields[11]) + Number(fields[12])) / tick;
    }, 0);
  const figures: Figure[] = [];
  for (const count of NODE_COUNTS) {
    const extents = `nodes${count}-extents`;
    const lake = `nodes${count}-lake`;
    const env = {
      SPILLWAY_METADATA_URL: await postgres.createDatabase(),
      SPILLWAY_EXTENT_STORE: ctx.azurite.connectionString(`${extents}/cluster`),
      SPILLWAY_DISTRIBUTED_MIN_SIZE: "1MB",
    };
    const nodes: Spillway[] = [];
    try {
      // Untraced: their CPU seconds are measured, and no span of theirs is read.
      for (let i = 0; i < count; i++) nodes.push(await ctx.spillway(`nodes${count}-${i + 1}`, env, false));
      const first = nodes[0]!;
      await createTable(first, "Bulk");
      await createBlobExternalTable(first, ctx.azurite, "BulkLake", lake, "parquet");
      await createExport(first, "BulkToLake", "BulkLake", EXPORT_QUERY("Bulk"), undefined, ctx.settings.sizeLimit);
      ctx.log(`nodes: ${count} node(s), ingesting ${rows} rows through every node`);
      const shares: PayloadFile[][] = nodes.map(() => []);
      files.forEach((f, i) => shares[i % count]!.push(f));
      const i0 = performance.now();
      await Promise.all(nodes.map((n, i) => ingestFiles(n, "Bulk", shares[i]!, Math.max(1, Math.floor(ctx.settings.ingestConcurrency / count)) || 1)));
      const ingestMs = performance.now() - i0;
      // Every node has said it is alive (heartbeats every 2 s) before the run is split.
      await new Promise((r) => setTimeout(r, 4500));

      const cpu0 = cpuSeconds(nodes);
      const t0 = performance.now();
      const run = await runNow(first, "BulkToLake");
      const ms = performance.now() - t0;
      const cpu = cpuSeconds(nodes) - cpu0;
      if (exportedRows(run) !== rows) throw new Error(`the run on ${count} node(s) exported ${exportedRows(run)} rows, expected ${rows}`);
      const parts = new Set(run.artifacts.map((a) => /_p(\d+)_\d+\.parquet$/.exec(a.path)?.[1] ?? "whole")).size;
      figures.push(
        reportedFigure("9", `one run exporting ${rows.toLocaleString("en-US")} rows to Parquet on ${count} node${count > 1 ? "s" : ""}: wall time`, ms, "ms", [
          `${fmtRate(rows, ms)}; CPU of the nodes during the run ${cpu.toFixed(1)} s, ${(cpu / (rows / 1e6)).toFixed(2)} CPU s per million rows; split in ${parts} part(s), ${run.artifacts.length} artifacts`,
          `setup: ingested through the ${count} node(s) in ${fmtMs(ingestMs)} (${fmtRate(rows, ingestMs)}), extents in Azurite; Azurite's and PostgreSQL's CPU are not counted`,
        ]),
      );
    } finally {
      await Promise.allSettled(nodes.map((n) => ctx.stopSpillway(n)));
      await ctx.azurite.deleteContainer(lake);
      await ctx.azurite.deleteContainer(extents);
    }
  }
  return figures;
}
