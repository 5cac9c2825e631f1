import type { BenchContext } from "../context.js";
import { statusBytes, processTree } from "../memory.js";
import { fmtMs, limitFigure, median, MiB, percentile, ratioFigure, reportedFigure, type Figure } from "../report.js";
import { scaled } from "../settings.js";
import { createBlobExternalTable, createTable, DATABASE, EXPORT_QUERY, exportedRows, runNow } from "../spillway-ops.js";
import type { Spillway } from "../processes.js";

const WARMUP = 5;
const RUNS = 60;
const QUERIES = 200;
/** The KQL twin of EXPORT_QUERY. */
const KQL_EXPORT_QUERY = (table: string) => `${table} | project Id, Name, Value, Timestamp, Guid, Props`;
/**
 * `variant` changes the text, not the answer (Value has three decimals, so no value lies
 * between 100 and 100.000999): Spillway keeps the analyses of texts it was asked for
 * recently (libs/kql AnalysisCache), and each of #8's queries must be parsed.
 */
const SMALL_KQL = (table: string, variant = 0) => `${table} | where Value > ${(100 + variant / 1e6).toFixed(6)} | summarize n = count(), total = sum(Value) by bin(Timestamp, 1d) | top 5 by n desc`;

function treeRss(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + (statusBytes(p, "VmRSS") ?? 0), 0);
}

async function kqlQuery(sw: Spillway, text: string): Promise<number> {
  let rows = 0;
  for await (const r of sw.query.query({ database: DATABASE, query: text, queryLanguage: "kql" })) rows += r.rows.length;
  return rows;
}

/** The same query through Kusto's front door, KustoService/Execute, as a Kusto user sends it. */
async function kustoExecute(sw: Spillway, text: string): Promise<number> {
  let rows = 0;
  for await (const r of sw.kusto.execute({ database: DATABASE, text })) rows += r.rows.length;
  return rows;
}

/**
 * #8, the Kusto language: start-up to ready and RSS before and after the parser is first
 * used (it loads on the first KQL, in a worker thread); a small KQL query after warm-up; and
 * an export written in KQL against its SQL twin, run after run on the same new rows.
 */
export async function kustoLanguage(ctx: BenchContext): Promise<Figure[]> {
  const { settings, azurite } = ctx;
  const rows = scaled(settings, 1000);
  const payloads: Buffer[] = [];
  for (let i = 0; i < RUNS + WARMUP; i++) payloads.push(await ctx.data.smallPayload(40_000 + i, rows));

  const t0 = performance.now();
  const sw = await ctx.spillway("kusto");
  const readyMs = performance.now() - t0;
  try {
    const rssReady = treeRss(sw.pid);
    await createTable(sw, "Events");
    await sw.query.ingest({ database: DATABASE, table: "Events", format: "csv", payload: payloads[0]! });
    const c0 = performance.now();
    await kqlQuery(sw, SMALL_KQL("Events"));
    const coldMs = performance.now() - c0;
    const rssParser = treeRss(sw.pid);

    const queryMs: number[] = [];
    const executeMs: number[] = [];
    for (let i = 0; i < WARMUP + QUERIES; i++) {
      // Alternating, so neither always meets a warmer cache.
      for (const [k, [run, into]] of (i % 2 ? ([[kqlQuery, queryMs], [kustoExecute, executeMs]] as const) : ([[kustoExecute, executeMs], [kqlQuery, queryMs]] as const)).entries()) {
        const q0 = performance.now();
        // Variant 0 was the cold query's.
        const n = await run(sw, SMALL_KQL("Events", 1 + 2 * i + k));
        if (n === 0) throw new Error("the small KQL query answered no rows");
        if (i >= WARMUP) into.push(performance.now() - q0);
      }
    }

    await createBlobExternalTable(sw, azurite, "SqlLake", "kusto-sql", "parquet");
    await createBlobExternalTable(sw, azurite, "KqlLake", "kusto-kql", "parquet");
    const hour = { intervalBetweenRuns: { seconds: 3600n } };
    await sw.catalog.createOrAlterContinuousExport({ database: DATABASE, name: "SqlTwin", externalTable: "SqlLake", query: EXPORT_QUERY("Events"), queryLanguage: "sql", properties: hour });
    await sw.catalog.createOrAlterContinuousExport({ database: DATABASE, name: "KqlTwin", externalTable: "KqlLake", query: KQL_EXPORT_QUERY("Events"), queryLanguage: "kql", properties: hour });
    const sqlMs: number[] = [];
    const kqlMs: number[] = [];
    for (let i = 1; i < payloads.length; i++) {
      await sw.query.ingest({ database: DATABASE, table: "Events", format: "csv", payload: payloads[i]! });
      // Alternating which goes first, so neither always meets a warmer cache.
      const order: Array<["SqlTwin" | "KqlTwin", number[]]> = i % 2 ? [["SqlTwin", sqlMs], ["KqlTwin", kqlMs]] : [["KqlTwin", kqlMs], ["SqlTwin", sqlMs]];
      for (const [name, into] of order) {
        const r0 = performance.now();
        const r = await runNow(sw, name);
        const ms = performance.now() - r0;
        if (exportedRows(r) !== rows) throw new Error(`${name} exported ${exportedRows(r)} rows, expected ${rows}`);
        if (i > WARMUP) into.push(ms);
      }
    }
    const rssEnd = treeRss(sw.pid);

    const startNotes = [
      `spawn to SERVING ${fmtMs(readyMs)}; the parser is not loaded then (RSS ${(rssReady / MiB).toFixed(0)} MiB)`,
      `first KQL query (loads the parser in its worker thread) ${fmtMs(coldMs)}; RSS after it ${(rssParser / MiB).toFixed(0)} MiB (+${((rssParser - rssReady) / MiB).toFixed(0)} MiB), ${(rssEnd / MiB).toFixed(0)} MiB at the end`,
    ];
    return [
      reportedFigure("8", "start-up to ready (parser loaded on first KQL)", readyMs, "ms", startNotes),
      reportedFigure("8", "RSS with the parser loaded", rssParser / MiB, "MiB"),
      limitFigure("8", `small KQL query (KustoService/Execute), ${QUERIES} after warm-up: p50`, percentile(executeMs, 50), "ms", 30, "p50 ≤ 30 ms", [
        `\`${SMALL_KQL("Events")}\`, its literal changed from one query to the next so that each is parsed; p99 ${fmtMs(percentile(executeMs, 99))}`,
      ]),
      reportedFigure("8", `the same query as QueryService/Query in KQL: p50`, percentile(queryMs, 50), "ms", [`p99 ${fmtMs(percentile(queryMs, 99))}`]),
      ratioFigure("8", `export run in KQL vs its SQL twin, ${rows} new rows, ${RUNS - WARMUP} runs each (median)`, median(kqlMs), median(sqlMs), "ms", 1.05, [
        `KQL \`${KQL_EXPORT_QUERY("Events")}\` vs SQL \`${EXPORT_QUERY("Events")}\`; p99 ${fmtMs(percentile(kqlMs, 99))} vs ${fmtMs(percentile(sqlMs, 99))}`,
      ]),
    ];
  } finally {
    await ctx.stopSpillway(sw);
    await azurite.deleteContainer("kusto-sql");
    await azurite.deleteContainer("kusto-kql");
  }
}
