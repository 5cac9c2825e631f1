import { randomUUID } from "node:crypto";
import { stat, unlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { asUserQueryError, bindQueryTables, checkQuery, describedColumn, DuckdbMemoryProbe, withoutCursorColumns, encodeArtifacts, openSandboxedInstance, type EncodedTable, quoteIdent, quoteLiteral, type CheckedQuery, type QueryShape, runMaterialized } from "@spillway/duck";
import { DEFAULTS } from "@spillway/config";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";
import { parseKustoType, RESERVED_COLUMN_PREFIX, toStorageSql } from "@spillway/kusto";
import {
  ABANDONED_SPOOL_MS,
  LocalExtentStore,
  LocalSpoolStore,
  openStorageTarget,
  parseConnectionString,
  RemoteExtentStore,
  ROWS_SPOOL_FILE,
  type ExtentStore,
  type SpoolStore,
  type StorageLocation,
} from "@spillway/storage";
import { describePayloadError, firstBadValueSql, payloadSelectSql, type IngestFormat } from "./payload-ingestion.js";

/** A table as one query sees it: its schema and the extents (handles in the extent store) that make it up. */
export interface TableBinding {
  name: string;
  columns: Array<{ name: string; type: string }>;
  extentPaths: string[];
  /** Each extent's cursor, in the same order, for a table with the IngestionTime policy (cursor functions read them). */
  extentCursors?: bigint[];
}

/** What a query needs besides its tables: what cursor_current() is. */
export interface QueryContext {
  currentCursor?: bigint;
}

export interface ResultColumn {
  name: string;
  type: string;
}

const QUERY_SCRATCH = "tmp/query";

/** How to encode an export's result in one pass (ExecuteToSpool's `encoding`). */
export interface SpoolEncoding {
  table: EncodedTable;
  /** Bytes per file before compression; 0 for no limit. */
  sizeLimit: number;
  rowGroupSize: number;
}
const INGEST_SCRATCH = "tmp/ingest";
const ADHOC_SCRATCH = "tmp/adhoc";

export interface AdhocQueryLimits {
  /** DuckDB memory_limit of the instance that runs ad-hoc queries. */
  memoryLimit: string;
  /** Longest an ad-hoc query may run, in ms. */
  timeoutMs: number;
}

const DEFAULT_ADHOC_LIMITS: AdhocQueryLimits = { memoryLimit: "2GB", timeoutMs: 4 * 60_000 };

/** Idle connections kept for runs: as many as runs go side by side by default, and a few more (runs asked for are not counted in the scheduler's slots). */
const MAX_IDLE_CONNECTIONS = DEFAULTS.maxConcurrentRuns + 4;

/**
 * The DuckDB compute of Spillway: in-memory instances confined to the data directory's
 * extent, spool and scratch folders. Each query binds its tables to its own extents (as
 * common table expressions in its statement, or as temporary views on a connection of its
 * own), so concurrent runs see their own cursor ranges.
 *
 * Ingestion has an instance of its own on one thread: a payload is read in order
 * anyway, and calls run side by side, one per libuv worker; DuckDB's threads working on
 * a single payload cost a fifth more CPU per payload for no gain when calls are
 * concurrent (measured by tools/bench/ingest-cpu-probe.ts).
 *
 * Ad-hoc queries (QueryService/Query) run on an instance of their own with a memory
 * limit, so one caller's query cannot take the memory export runs need (SPEC §7 limits).
 */
export class QueryEngine {
  /** DuckDB's memory in use by export runs, for their resource records. */
  readonly runMemory: DuckdbMemoryProbe;
  /**
   * Connections of the runs' instance that queries with tables bound inline have finished
   * with: such a query leaves nothing on its connection, and connecting was a trip through
   * libuv's pool for every run (bench #3).
   */
  private readonly idle: DuckDBConnection[] = [];
  private closed = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly ingestInstance: DuckDBInstance,
    private readonly adhocInstance: DuckDBInstance,
    private readonly adhocLimits: AdhocQueryLimits,
    readonly dataDir: string,
    /** Export results between this service and the writer (the engine may write only there and in its scratch). */
    readonly spools: SpoolStore,
    /** The tables' data: this service writes extents, and deletes the files of dropped ones. */
    readonly extents: ExtentStore,
  ) {
    this.runMemory = new DuckdbMemoryProbe(instance);
  }

  /**
   * `sharedExtents`: extents in shared storage (a connection string) read through a local
   * cache of `cacheBytes`, for nodes that export together; absent, extents are local files.
   */
  static async create(dataDir: string, adhocLimits: AdhocQueryLimits = DEFAULT_ADHOC_LIMITS, sharedExtents?: { location: string; cacheBytes: number }): Promise<QueryEngine> {
    // One scratch folder per instance, as the writer has its own: every instance names its
    // spill files alike (duckdb_temp_storage_DEFAULT-0.tmp …), and two instances spilling
    // into one folder crashed the process when tried.
    const at = (folder: string) => join(dataDir, folder);
    const [instance, ingestInstance, adhocInstance] = await Promise.all([
      // Runs and ingestion read each extent once or twice: no cache of files (InstanceLimits).
      openSandboxedInstance([at("extents"), at("spool"), at(QUERY_SCRATCH)], at(QUERY_SCRATCH), { externalFileCache: false }),
      openSandboxedInstance([at("extents"), at(INGEST_SCRATCH)], at(INGEST_SCRATCH), { threads: 1, externalFileCache: false }),
      openSandboxedInstance([at("extents"), at(ADHOC_SCRATCH)], at(ADHOC_SCRATCH), { memoryLimit: adhocLimits.memoryLimit }),
    ]);
    const spools = new LocalSpoolStore(at("spool"));
    await spools.removeOlderThan(ABANDONED_SPOOL_MS);
    const extents = sharedExtents
      ? await RemoteExtentStore.open(openStorageTarget(extentStoreLocation(sharedExtents.location)), dataDir, sharedExtents.cacheBytes)
      : new LocalExtentStore(dataDir);
    return new QueryEngine(instance, ingestInstance, adhocInstance, adhocLimits, dataDir, spools, extents);
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.closeSync();
    this.runMemory.close();
    this.instance.closeSync();
    this.ingestInstance.closeSync();
    this.adhocInstance.closeSync();
  }

  private async withConnection<T>(task: (c: DuckDBConnection) => Promise<T>, instance = this.instance): Promise<T> {
    const connection = await instance.connect();
    try {
      return await task(connection);
    } finally {
      connection.closeSync();
    }
  }

  /** Parses and checks user SQL (single read-only SELECT, no file access). */
  async check(query: string): Promise<CheckedQuery> {
    return this.withConnection(async (c) => {
      const reader = await runMaterialized(c, `SELECT json_serialize_sql(${quoteLiteral(query)}) AS tree`);
      return checkQuery(query, String(reader.getRowObjects()[0]!.tree));
    });
  }

  /**
   * Checks the query and binds `tables` as the query names them: as views on a connection of
   * its own, or `inline` in the WITH clause returned, on a connection used again (the runs'
   * instance). `close` ends the connection, or gives it back (`failed`: ended all the same),
   * and lets the extent store evict the files it read.
   */
  private async openBound(query: string, tables: TableBinding[], instance = this.instance, context: QueryContext = {}, inline = false): Promise<{ connection: DuckDBConnection; sql: string; with: string; tables: string[]; shape: QueryShape; cursorColumn: boolean; close(failed?: boolean): void }> {
    // Tables bound inline leave nothing on the connection: it goes back to the idle ones, unless
    // its query failed, or may have seeded the connection's random numbers (setseed), which the
    // next query on it would draw from.
    const reused = inline && instance === this.instance && !/setseed/i.test(query);
    const connection = (reused && this.idle.pop()) || (await instance.connect());
    const held: Array<{ release(): void }> = [];
    const close = (failed = false) => {
      if (reused && !failed && !this.closed && this.idle.length < MAX_IDLE_CONNECTIONS) this.idle.push(connection);
      else connection.closeSync();
      for (const h of held.splice(0)) h.release();
    };
    try {
      // Every table's files are waited for, so none that arrives after another failed is left held.
      const local = await Promise.allSettled(tables.map((t) => this.extents.localFiles(t.extentPaths)));
      for (const l of local) if (l.status === "fulfilled") held.push(l.value);
      const failed = local.find((l) => l.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const bindable = tables.map((t, i) => ({ name: t.name, columns: t.columns, extentFiles: (local[i] as PromiseFulfilledResult<{ files: string[] }>).value.files, cursors: t.extentCursors }));
      return { connection, close, ...(await bindQueryTables(connection, query, bindable, { ...context, inline })) };
    } catch (err) {
      close(true);
      throw err;
    }
  }

  /**
   * Runs `task` with the query bound. `inline`: `sql` is to be read as a subquery after
   * `withClause`, which binds the tables as common table expressions (no statement of its
   * own, and the connection is used again: bench #3); otherwise they are views, and `sql`
   * runs as it is (selecting * from a subquery would rename its repeated column names).
   */
  private async withBoundQuery<T>(query: string, tables: TableBinding[], context: QueryContext, inline: boolean, task: (c: DuckDBConnection, sql: string, withClause: string) => Promise<T>): Promise<T> {
    const { connection, sql, with: withClause, close } = await this.openBound(query, tables, this.instance, context, inline);
    let failed = false;
    try {
      return await task(connection, sql, withClause);
    } catch (err) {
      failed = true;
      throw asQueryError(err);
    } finally {
      close(failed);
    }
  }

  /**
   * Runs an export query into the spool folder `folder`. With `encoding`, the result is
   * written straight in the external table's format, in files of about sizeLimit bytes
   * (one pass: the writer only finishes and uploads them); otherwise, cast to the target's
   * types, as one Parquet file of rows for the writer to encode.
   */
  async executeToSpool(query: string, tables: TableBinding[], output: Array<{ name: string; type: string }>, folder: string, encoding?: SpoolEncoding, context: QueryContext = {}): Promise<{ rows: bigint; encodedFiles: string[] }> {
    return this.withBoundQuery(query, tables, context, true, async (c, sql, withClause) => {
      const select = output
        .map((col) => `${toStorageSql(`q.${quoteIdent(col.name)}`, parseKustoType(col.type, `column '${col.name}'`))} AS ${quoteIdent(col.name)}`)
        .join(", ");
      const result = `(${withClause}SELECT ${select} FROM (${sql}\n) AS q)`;
      if (!encoding) {
        const reader = await runMaterialized(c, `COPY ${result} TO ${quoteLiteral(join(folder, ROWS_SPOOL_FILE))} (FORMAT parquet, COMPRESSION lz4_raw)`);
        return { rows: BigInt(String(reader.getRows()[0]![0])), encodedFiles: [] };
      }
      const encoded = await encodeArtifacts(c, encoding.table, `${result} AS s`, join(folder, "encoded"), encoding);
      return { rows: encoded.rows, encodedFiles: encoded.files.map((f) => relative(folder, f)) };
    });
  }

  /** The columns a query gives (name and Kusto type where one maps), without running it. */
  async describe(query: string, tables: TableBinding[], context: QueryContext = {}): Promise<ResultColumn[]> {
    return this.withBoundQuery(query, tables, context, false, async (c, sql) => {
      const described = await runMaterialized(c, `DESCRIBE (${sql}\n)`);
      return described
        .getRowObjects()
        .map((r) => describedColumn(String(r.column_name), String(r.column_type)))
        .filter((col) => !col.name.startsWith(RESERVED_COLUMN_PREFIX));
    });
  }

  /**
   * Writes a query's result as the extent `extentName` (a table's new rows: IngestFromQuery),
   * its `columns` taken from the result by name and stored as the table stores them;
   * published, or nothing is left.
   */
  async queryToExtent(query: string, tables: TableBinding[], columns: Array<{ name: string; type: string }>, extentName: string, context: QueryContext = {}): Promise<{ path: string; rows: bigint; bytes: bigint }> {
    const out = await this.extents.writeTarget(extentName);
    try {
      const rows = await this.withBoundQuery(query, tables, context, true, async (c, sql, withClause) => {
        const select = columns.map((col) => `${toStorageSql(`q.${quoteIdent(col.name)}`, parseKustoType(col.type, `column '${col.name}'`))} AS ${quoteIdent(col.name)}`).join(", ");
        const reader = await runMaterialized(c, `COPY (${withClause}SELECT ${select} FROM (${sql}\n) AS q) TO ${quoteLiteral(out)} (FORMAT parquet, COMPRESSION lz4_raw)`);
        return BigInt(String(reader.getRows()[0]![0]));
      });
      const bytes = BigInt((await stat(out)).size);
      await this.extents.publish(extentName);
      return { path: extentName, rows, bytes };
    } catch (err) {
      await this.extents.delete(extentName).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Runs an ad-hoc query, yielding the columns first, then batches of JSON-ready rows. It
   * is interrupted when `signal` aborts (the caller went away) or the query timeout passes.
   */
  async *query(query: string, tables: TableBinding[], signal?: AbortSignal, context: QueryContext = {}): AsyncIterable<{ columns?: ResultColumn[]; rows?: unknown[][] }> {
    const bound = await this.openBound(query, tables, this.adhocInstance, context);
    const { connection, close } = bound;
    // The cursor column a table got for cursor functions is not part of the answer.
    const sql = bound.cursorColumn ? withoutCursorColumns(bound.sql) : bound.sql;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      connection.interrupt();
    }, this.adhocLimits.timeoutMs);
    const interrupt = () => connection.interrupt();
    signal?.addEventListener("abort", interrupt);
    try {
      const result = await connection.stream(sql);
      // JSON is an alias of VARCHAR: the alias is what tells a dynamic column apart.
      yield { columns: result.columnNames().map((n, i) => describedColumn(n, result.columnType(i).alias ?? result.columnType(i).toString())) };
      for await (const rows of result.yieldRowsJson()) yield { rows: rows as unknown[][] };
    } catch (err) {
      if (timedOut) {
        throw new SpillwayError(ErrorCode.deadlineExceeded, `the query ran longer than ${this.adhocLimits.timeoutMs / 1000} s, the most a query may (--query-timeout), and was stopped`);
      }
      throw asQueryError(err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", interrupt);
      close();
    }
  }

  /**
   * Turns a payload, whole or in pieces, into the extent `extentName` (a handle in the extent
   * store), published; returns its handle and row count. A failing source of pieces leaves
   * nothing behind.
   */
  async ingest(format: IngestFormat, payload: Uint8Array | AsyncIterable<Uint8Array>, columns: Array<{ name: string; type: string }>, ignoreFirstRecord: boolean, extentName: string): Promise<{ path: string; rows: bigint; bytes: bigint }> {
    const scratch = join(this.dataDir, INGEST_SCRATCH, `${randomUUID()}.${format}`);
    try {
      await keepPayload(scratch, payload);
      return await this.ingestFiles(format, [{ file: scratch, shown: "the payload" }], columns, ignoreFirstRecord, extentName);
    } finally {
      // One call (rm makes two: an lstat first), each a trip through libuv's pool (bench #3).
      await unlink(scratch).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    }
  }

  /** Where files to ingest by reference are kept while they are read (in the ingestion sandbox). */
  scratchFile(suffix: string): string {
    return join(this.dataDir, INGEST_SCRATCH, `${randomUUID()}${suffix}`);
  }

  /**
   * Turns files in the ingestion scratch folder (`scratchFile`), read as one payload (DuckDB
   * reads one ending in `.gz` as gzip; IngestFromStorage unpacks its own first, to count
   * them), into the extent `extentName`, published; all or nothing. Messages
   * name each file as `shown`, never its scratch path.
   */
  async ingestFiles(format: IngestFormat, files: Array<{ file: string; shown: string }>, columns: Array<{ name: string; type: string }>, ignoreFirstRecord: boolean, extentName: string): Promise<{ path: string; rows: bigint; bytes: bigint }> {
    const out = await this.extents.writeTarget(extentName);
    const paths = files.map((f) => f.file);
    const source = paths.length === 1 ? paths[0]! : paths;
    const extent = await this.withConnection(async (c) => {
      try {
        const parquetTypes = format === "parquet" ? await sourceTypes(c, paths[0]!) : undefined;
        // lz4: extents are local working data; it cost 10% less CPU per payload than zstd
        // in the ingestion benchmark, for files about a fifth larger.
        const reader = await runMaterialized(c, `COPY (${payloadSelectSql(format, source, columns, ignoreFirstRecord, parquetTypes)}) TO ${quoteLiteral(out)} (FORMAT parquet, COMPRESSION lz4_raw)`);
        const rows = BigInt(String(reader.getRows()[0]![0]));
        return { path: extentName, rows, bytes: BigInt((await stat(out)).size) };
      } catch (err) {
        await this.extents.delete(extentName);
        // The scratch files' paths are ours, not the caller's business.
        let explained = await this.explainPayloadError(c, err, format, source, columns, ignoreFirstRecord);
        for (const f of files) explained = explained.replaceAll(f.file, f.shown);
        throw invalidArgument(explained);
      }
    }, this.ingestInstance);
    try {
      await this.extents.publish(extentName);
    } catch (err) {
      await this.extents.delete(extentName).catch(() => undefined);
      throw err;
    }
    return extent;
  }

  private async explainPayloadError(c: DuckDBConnection, err: unknown, format: IngestFormat, file: string | string[], columns: Array<{ name: string; type: string }>, ignoreFirstRecord: boolean): Promise<string> {
    const message = (err as Error).message;
    if (!/CSV Error on Line/.test(message)) {
      const diagnose = firstBadValueSql(format, file, columns, ignoreFirstRecord);
      if (diagnose) {
        try {
          const row = (await runMaterialized(c, diagnose)).getRowObjects()[0];
          if (row && row.column_name) {
            const column = String(row.column_name);
            const type = columns.find((col) => col.name === column)!.type;
            return `payload refused: line ${row.line}, column '${column}': '${String(row[column])}' is not a valid ${type}; nothing was ingested`;
          }
        } catch {
          // The structural error below says enough.
        }
      }
    }
    return describePayloadError(message, format);
  }
}

/**
 * Writes a payload to its scratch file. A failure of the disk is told without the file's
 * path (the data dir is the operator's business, not the caller's); a failure of the
 * source of pieces (a refused or abandoned stream) passes through as it is.
 */
async function keepPayload(scratch: string, payload: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
  try {
    await writeFile(scratch, payload);
  } catch (err) {
    if (err instanceof SpillwayError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOSPC") throw new SpillwayError(ErrorCode.resourceExhausted, "the server has no disk space left for the payload; nothing was ingested");
    throw new SpillwayError(ErrorCode.unavailable, `the server could not keep the payload (${code ?? "write failed"}); nothing was ingested`);
  }
}

async function sourceTypes(c: DuckDBConnection, file: string): Promise<Map<string, string>> {
  try {
    const reader = await runMaterialized(c, `DESCRIBE SELECT * FROM read_parquet(${quoteLiteral(file)})`);
    return new Map(reader.getRowObjects().map((r) => [String(r.column_name), String(r.column_type)]));
  } catch {
    // Not Parquet at all: the COPY that follows says so.
    return new Map();
  }
}

/** DuckDB binder and parser errors are the user's to fix: INVALID_ARGUMENT with DuckDB's words. */
function asQueryError(err: unknown): unknown {
  if (!(err instanceof Error) || "code" in err) return err;
  if (/^Out of Memory Error/.test(err.message)) {
    return new SpillwayError(ErrorCode.resourceExhausted, `the query needs more memory than a query may use (--query-memory-limit): ${err.message.split("\n")[0]}`);
  }
  return asUserQueryError(err);
}

/** The shared extent store's location; what is wrong with it names the setting (the text is masked). */
function extentStoreLocation(text: string): StorageLocation {
  try {
    return parseConnectionString(text);
  } catch (err) {
    throw new SpillwayError(ErrorCode.invalidArgument, `SPILLWAY_EXTENT_STORE: ${(err as Error).message}`);
  }
}
