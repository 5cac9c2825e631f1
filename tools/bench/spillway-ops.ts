import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { IngestStreamRequestSchema, RunContinuousExportNowResponse } from "@spillway/proto";
import { COLUMNS, EXPORT_QUERY, type PayloadFile } from "./datagen.js";
import type { Azurite, Spillway } from "./processes.js";
import type { ExportFormat } from "./baselines.js";

export const DATABASE = "default";
const HOUR = { seconds: 3600n };

export async function createTable(sw: Spillway, name: string): Promise<void> {
  await sw.catalog.createTable({ database: DATABASE, name, columns: COLUMNS });
}

/** An external table in its own Azurite container (created here). */
export async function createBlobExternalTable(sw: Spillway, azurite: Azurite, name: string, container: string, format: ExportFormat): Promise<void> {
  await azurite.createContainer(container);
  await sw.catalog.createExternalTable({
    database: DATABASE,
    name,
    kind: "blob",
    dataFormat: format === "parquet" ? "parquet" : "csv",
    columns: COLUMNS,
    connectionStrings: [azurite.connectionString(container)],
    properties: format === "csv-gzip" ? { compressed: true } : {},
  });
}

/**
 * A continuous export; an hour between runs unless said otherwise, so only
 * RunContinuousExportNow runs it. sizeLimit: Spillway's default unless BENCH_SIZE_LIMIT.
 */
export async function createExport(sw: Spillway, name: string, externalTable: string, query: string, intervalSeconds = HOUR.seconds, sizeLimit?: bigint): Promise<void> {
  await sw.catalog.createOrAlterContinuousExport({
    database: DATABASE,
    name,
    externalTable,
    query,
    queryLanguage: "sql",
    properties: { intervalBetweenRuns: { seconds: intervalSeconds }, ...(sizeLimit ? { sizeLimit } : {}) },
  });
}

export { EXPORT_QUERY };

/** Runs an export now; throws unless the run completed. */
export async function runNow(sw: Spillway, name: string): Promise<RunContinuousExportNowResponse> {
  const r = await sw.catalog.runContinuousExportNow({ database: DATABASE, name });
  if (r.result !== "Completed") throw new Error(`run of ${name} ${r.result || "returned no result"}: ${r.details}`);
  return r;
}

export function exportedRows(r: RunContinuousExportNowResponse): number {
  return r.artifacts.reduce((sum, a) => sum + Number(a.numRecords), 0);
}

export function exportedBytes(r: RunContinuousExportNowResponse): number {
  return r.artifacts.reduce((sum, a) => sum + Number(a.sizeInBytes), 0);
}

/** How a payload file travels: whole in one Ingest message, or read and sent in 1 MiB pieces by IngestStream. */
export type IngestRpc = "Ingest" | "IngestStream";
const PIECE_BYTES = 1024 * 1024;

/** A file as IngestStream messages: the target with the first piece, end_of_payload on the last. */
async function* filePieces(path: string, target: MessageInitShape<typeof IngestStreamRequestSchema>): AsyncIterable<MessageInitShape<typeof IngestStreamRequestSchema>> {
  let pending = target;
  let first = true;
  for await (const payload of createReadStream(path, { highWaterMark: PIECE_BYTES }) as AsyncIterable<Buffer>) {
    if (!first) yield pending;
    pending = first ? { ...target, payload } : { payload };
    first = false;
  }
  yield { ...pending, endOfPayload: true };
}

/**
 * Ingests the payload files through `rpc` (IngestStream unless told), `concurrency` calls in
 * flight; each file is read from disk just before its call. Returns elapsed ms and rows.
 */
export async function ingestFiles(
  sw: Spillway,
  table: string,
  files: PayloadFile[],
  concurrency: number,
  progress?: (done: number, total: number) => void,
  rpc: IngestRpc = "IngestStream",
): Promise<{ ms: number; rows: number; calls: number; callMs: number[] }> {
  let next = 0;
  let rows = 0;
  let done = 0;
  const callMs: number[] = [];
  const t0 = performance.now();
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      const target = { database: DATABASE, table, format: "csv" };
      const payload = rpc === "Ingest" ? await readFile(file.path) : undefined;
      const c0 = performance.now();
      const r = payload ? await sw.query.ingest({ ...target, payload }) : await sw.query.ingestStream(filePieces(file.path, target));
      callMs.push(performance.now() - c0);
      if (Number(r.rowCount) !== file.rows) throw new Error(`ingest of ${file.path} took ${r.rowCount} rows, expected ${file.rows}`);
      rows += Number(r.rowCount);
      progress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return { ms: performance.now() - t0, rows, calls: files.length, callMs };
}

/** A progress line on stderr at most every few seconds. */
export function progressPrinter(label: string): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (done === total || now - last > 5000) {
      last = now;
      process.stderr.write(`  ${label}: ${done}/${total}\n`);
    }
  };
}
