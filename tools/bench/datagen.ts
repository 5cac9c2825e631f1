import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { PAYLOAD_ROWS } from "./settings.js";

/** The benchmark table: the six column types of the issue. */
export const COLUMNS = [
  { name: "Id", type: "long" },
  { name: "Name", type: "string" },
  { name: "Value", type: "real" },
  { name: "Timestamp", type: "datetime" },
  { name: "Guid", type: "guid" },
  { name: "Props", type: "dynamic" },
];

/** The same columns as DuckDB types (what a DuckDB user would declare). */
export const DUCKDB_COLUMNS = "Id BIGINT, Name VARCHAR, Value DOUBLE, Timestamp TIMESTAMP, Guid UUID, Props JSON";

/** The continuous export's query, and the baseline's. */
export const EXPORT_QUERY = (table: string) => `SELECT Id, Name, Value, Timestamp, Guid, Props FROM ${table}`;

export interface PayloadFile {
  path: string;
  rows: number;
}

/**
 * Deterministic data from a seed, written by DuckDB straight to CSV (no per-row
 * JavaScript). Every value is hash(row number, seed, column) rather than random() after
 * setseed(): DuckDB's random() is only repeatable single-threaded, hashes are the same
 * whatever the thread count or the order chunks are made in.
 */
export class DataGenerator {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly dir: string,
    private readonly seed: number,
    /** Rows of the distinct pool that payloads cycle through. */
    readonly poolRows: number,
  ) {}

  static async create(dir: string, seed: number, poolRows: number): Promise<DataGenerator> {
    mkdirSync(dir, { recursive: true });
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    return new DataGenerator(instance, connection, dir, seed, poolRows);
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  /** Rows [from, to) of the data set as CSV text columns (Kusto's CSV: ISO datetimes, JSON text). */
  private selectSql(from: number, to: number): string {
    const s = this.seed;
    return `SELECT i AS Id,
        'user_' || (hash(i, ${s}, 1) % 100000)::VARCHAR AS Name,
        round((hash(i, ${s}, 2) % 100000000) / 1000.0, 3) AS Value,
        strftime(TIMESTAMP '2025-01-01' + to_microseconds((hash(i, ${s}, 3) % 31536000000000)::BIGINT), '%Y-%m-%dT%H:%M:%S.%fZ') AS Timestamp,
        substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12) AS Guid,
        '{"k":' || (hash(i, ${s}, 4) % 1000)::VARCHAR || ',"tag":"t' || (hash(i, ${s}, 5) % 16)::VARCHAR || '","ok":' ||
          CASE WHEN hash(i, ${s}, 6) % 2 = 0 THEN 'true' ELSE 'false' END || '}' AS Props
      FROM (SELECT range AS i, md5(range::VARCHAR || ':${s}') AS h FROM range(${from}, ${to}))`;
  }

  private async writeCsv(path: string, from: number, to: number): Promise<void> {
    if (existsSync(path)) return;
    const partial = `${path}.partial`;
    await this.connection.run(`COPY (${this.selectSql(from, to)}) TO '${partial}' (FORMAT csv, HEADER false)`);
    renameSync(partial, path);
  }

  private get poolChunks(): number {
    return Math.ceil(this.poolRows / PAYLOAD_ROWS);
  }

  /** Chunk k of the pool: rows [k·100k, min((k+1)·100k, pool)). */
  private async chunk(k: number, rows?: number): Promise<PayloadFile> {
    const from = k * PAYLOAD_ROWS;
    const full = Math.min(PAYLOAD_ROWS, this.poolRows - from);
    const n = Math.min(rows ?? full, full);
    const path = join(this.dir, n === full ? `chunk-${k}.csv` : `chunk-${k}-first-${n}.csv`);
    await this.writeCsv(path, from, from + n);
    return { path, rows: n };
  }

  /**
   * CSV payloads of up to 100k rows holding `totalRows` rows, cycling through the pool
   * when more rows are asked for than it has (the same rows ingested again).
   */
  async payloads(totalRows: number): Promise<PayloadFile[]> {
    const files: PayloadFile[] = [];
    let left = totalRows;
    for (let i = 0; left > 0; i++) {
      const file = await this.chunk(i % this.poolChunks, left);
      files.push(file);
      left -= file.rows;
    }
    return files;
  }

  /** A small payload (for latency runs), rows outside the pool's id range, as bytes. */
  async smallPayload(index: number, rows: number): Promise<Buffer> {
    const from = 1_000_000_000_000 + index * rows;
    const path = join(this.dir, `small-${rows}-${index}.csv`);
    await this.writeCsv(path, from, from + rows);
    return readFileSync(path);
  }

  bytesOf(files: PayloadFile[]): number {
    return files.reduce((sum, f) => sum + statSync(f.path).size, 0);
  }
}
