import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import type { Azurite } from "./processes.js";
import { DUCKDB_COLUMNS, EXPORT_QUERY, type PayloadFile } from "./datagen.js";

export type ExportFormat = "parquet" | "csv-gzip";

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The output columns as Spillway's writer renders them (services/writer/src/artifact-encoding.ts
 * for these column types), so the baseline writes the same file a Spillway run writes:
 * guid and dynamic as text; in CSV, datetimes as Kusto's ISO 8601 with seven digits.
 */
function outputColumns(format: ExportFormat): string {
  const datetime = format === "parquet" ? "Timestamp" : `strftime(Timestamp, '%Y-%m-%dT%H:%M:%S.%f') || '0Z' AS Timestamp`;
  return `Id, Name, Value, ${datetime}, CAST(Guid AS VARCHAR) AS Guid, CAST(Props AS VARCHAR) AS Props`;
}

/** Spillway's defaults for these formats: snappy Parquet in 100k-row groups; headerless gzip CSV. */
function copyOptions(format: ExportFormat): string {
  return format === "parquet" ? "FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 100000" : "FORMAT csv, DELIMITER ',', HEADER false, COMPRESSION gzip";
}

/** The same upload Spillway's blob target makes (block size and concurrency as in libs/storage). */
export async function uploadOnce(azurite: Azurite, container: string, name: string, file: string): Promise<void> {
  const size = statSync(file).size;
  await azurite.client
    .getContainerClient(container)
    .getBlockBlobClient(name)
    .uploadFile(file, { blockSize: size > 64 * 1024 * 1024 ? 8 * 1024 * 1024 : 4 * 1024 * 1024, concurrency: 4 });
}

/**
 * DuckDB doing the work directly, in this process: a database file with a native
 * table, default threads and memory settings, time zone UTC (as Spillway sets it).
 */
export class DuckBaseline {
  private instance?: DuckDBInstance;
  private connection?: DuckDBConnection;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  get file(): string {
    return join(this.dir, "baseline.duckdb");
  }

  async open(): Promise<DuckDBConnection> {
    if (!this.connection) {
      this.instance = await DuckDBInstance.create(this.file);
      this.connection = await this.instance.connect();
      await this.connection.run("SET TimeZone = 'UTC'");
      await this.connection.run(`SET temp_directory = ${quote(join(this.dir, "tmp"))}`);
    }
    return this.connection;
  }

  /** Closes the database: the next statement reads the table back from its file, not a warm buffer pool. */
  close(): void {
    this.connection?.closeSync();
    this.instance?.closeSync();
    this.connection = undefined;
    this.instance = undefined;
  }

  /**
   * Reads the CSV payload files into a new table (one statement over all files, as a DuckDB
   * user would) and checkpoints it to disk. Returns elapsed ms and rows.
   */
  async loadTable(table: string, files: PayloadFile[]): Promise<{ ms: number; rows: number }> {
    const c = await this.open();
    await c.run(`DROP TABLE IF EXISTS ${table}`);
    const t0 = performance.now();
    await c.run(`CREATE TABLE ${table} (${DUCKDB_COLUMNS})`);
    const reader = await c.runAndReadAll(
      `INSERT INTO ${table} SELECT Id, Name, Value, CAST(Timestamp AS TIMESTAMP), Guid, Props FROM read_csv([${files.map((f) => quote(f.path)).join(", ")}],
         header = false, auto_detect = false, delim = ',', quote = '"', escape = '"',
         columns = {'Id': 'BIGINT', 'Name': 'VARCHAR', 'Value': 'DOUBLE', 'Timestamp': 'TIMESTAMPTZ', 'Guid': 'UUID', 'Props': 'JSON'})`,
    );
    await c.run("CHECKPOINT");
    const ms = performance.now() - t0;
    return { ms, rows: Number(reader.getRows()[0]![0]) };
  }

  /**
   * `COPY (the export query) TO` a local file, then one upload of it with @azure/storage-blob.
   * Starts from a closed database (see close()).
   */
  async exportAndUpload(table: string, format: ExportFormat, azurite: Azurite, container: string): Promise<{ copyMs: number; uploadMs: number; rows: number; bytes: number }> {
    this.close();
    const file = join(this.dir, `baseline-${table}.${format === "parquet" ? "parquet" : "csv.gz"}`);
    rmSync(file, { force: true });
    const t0 = performance.now();
    const c = await this.open();
    const reader = await c.runAndReadAll(`COPY (SELECT ${outputColumns(format)} FROM (${EXPORT_QUERY(table)}) AS q) TO ${quote(file)} (${copyOptions(format)})`);
    const t1 = performance.now();
    await uploadOnce(azurite, container, `baseline-${table}.${format === "parquet" ? "parquet" : "csv.gz"}`, file);
    const t2 = performance.now();
    const bytes = statSync(file).size;
    rmSync(file, { force: true });
    return { copyMs: t1 - t0, uploadMs: t2 - t1, rows: Number(reader.getRows()[0]![0]), bytes };
  }

  async dropTable(table: string): Promise<void> {
    const c = await this.open();
    await c.run(`DROP TABLE IF EXISTS ${table}`);
    await c.run("CHECKPOINT");
  }

  async version(): Promise<string> {
    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    const v = String((await c.runAndReadAll("SELECT version()")).getRows()[0]![0]);
    c.closeSync();
    instance.closeSync();
    return v;
  }

  destroy(): void {
    this.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
