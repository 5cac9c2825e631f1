import { randomUUID } from "node:crypto";
import { copyFile, link, mkdir, rm, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import pLimit from "p-limit";
import xxhash from "xxhash-wasm";
import { DuckdbMemoryProbe, encodeArtifacts, openSandboxedInstance, quoteIdent, quoteLiteral, runMaterialized } from "@spillway/duck";
import { ErrorCode, failedPrecondition, internal, invalidArgument, SpillwayError, unavailable } from "@spillway/errors";
import type { ExternalTable } from "@spillway/proto";
import { ABANDONED_SPOOL_MS, artifactTargetIndex, LocalSpoolStore, openConfinedStorageTarget, ROWS_SPOOL_FILE, parseConnectionString, stagedArtifactName, type FileTargetPolicy, type PutFile, type SpoolStore, type StorageTarget } from "@spillway/storage";
import { hashJoinsSql, hashTableName, partitionSpecs, pathSql, deltaFolderSql } from "./partition-sql.js";
import { DeltaLog, type AddAction } from "./delta-log.js";
import { columnsFromDeltaSchema } from "./delta-schema.js";
import { addActionFor, checkWritable, commitDelta, committedRun, deltaTarget, type DeltaPlan } from "./delta-table-writer.js";
import { readStageManifest, writeStageManifest } from "./stage-manifest.js";
import { finishTextFile } from "./text-finishing.js";
import { storageCall } from "./storage-call.js";
import { StagesInMemory } from "./stages-in-memory.js";

export interface WrittenArtifact {
  path: string;
  numRecords: bigint;
  sizeInBytes: bigint;
  /** Uploaded: its MD5 (base64) as the storage reported it then, when it did. */
  md5?: string;
}

export interface StageRequest {
  stageId: string;
  externalTable: ExternalTable;
  /** The run's spool in the query service's spool store. */
  spoolHandle: string;
  /** The spool's files when the query service encoded them in one pass (else it holds rows). */
  encodedFiles: string[];
  /** The rows in the spool, as the query service counted them. */
  spoolRows: bigint;
  nameStem: string;
  rowGroupSize: number;
  /** Bytes per artifact before compression. */
  sizeLimit: bigint;
  /** Run number or similar, to spread artifacts over the connection strings. */
  spreadKey: number;
  /** Delta tables: the txn of this run and the cursor range it covers. */
  deltaAppId?: string;
  deltaTxnVersion?: bigint;
  /** A backfill batch's first txn version, as DeltaPlan.txnSince; 0 or absent: deltaTxnVersion alone. */
  deltaTxnSince?: bigint;
  fromCursor?: string;
  toCursor?: string;
}

interface StagedArtifact extends WrittenArtifact {
  localFile: string;
  name: string;
  /** Its partition folder ("" when unpartitioned). */
  folder: string;
  /** Index of its connection string. */
  targetIndex: number;
  target: StorageTarget;
}

/**
 * Entries (a stage and each of its artifacts) kept in memory for uploads, at most (see
 * StagesInMemory): a few megabytes, while the runs in flight (4 by default) hold a handful.
 */
export const STAGE_ENTRIES_IN_MEMORY = 10_000;

type StagedRun = { artifacts: StagedArtifact[]; table: ExternalTable; delta?: DeltaPlan };

/**
 * Encodes spooled query results in the external table's format with DuckDB (no rows
 * pass through JavaScript), stages them locally, and uploads them to the table's
 * storage when told to: before that, the caller journals where they will land (as it
 * stages them, where it knows the names beforehand). A stage is kept on disk with its
 * manifest, so it survives a restart of the writer, until the caller discards it.
 */
export class ArtifactWriter {
  /** DuckDB's memory in use, for the resource records of runs. */
  readonly duckdbMemory: DuckdbMemoryProbe;
  /**
   * What `stage` wrote to its manifest, by stage id, until the stage is discarded
   * (or goes for newer ones): the upload that follows in this process needs no reading back
   * (2 ms of a small run, bench #3). The manifest on disk is what any other upload reads.
   */
  private readonly inMemory: StagesInMemory<StagedRun>;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly dataDir: string,
    private readonly fileTargets: FileTargetPolicy,
    /** Where the query service leaves a run's result. */
    private readonly spools: SpoolStore,
    /** Where staged runs wait for their upload, kept across restarts (durable stage). */
    private readonly stages: SpoolStore,
    entriesKept: number,
  ) {
    this.duckdbMemory = new DuckdbMemoryProbe(instance);
    this.inMemory = new StagesInMemory(entriesKept);
  }

  /**
   * `fileTargets` says where file:// tables may be written; checked again on every write.
   * `entriesKept`: the budget of staged runs kept in memory for their upload (STAGE_ENTRIES_IN_MEMORY).
   */
  static async create(dataDir: string, fileTargets: FileTargetPolicy, entriesKept = STAGE_ENTRIES_IN_MEMORY): Promise<ArtifactWriter> {
    const dirs = ["spool", "tmp/writer"].map((d) => join(dataDir, d));
    // Each stage's spool is read once: no cache of files (InstanceLimits).
    const instance = await openSandboxedInstance(dirs, join(dataDir, "tmp/writer"), { externalFileCache: false });
    const stages = new LocalSpoolStore(join(dataDir, "tmp/writer"), "stage");
    // A stage is kept across restarts for the run that made it, until it counts as abandoned.
    await stages.removeOlderThan(ABANDONED_SPOOL_MS);
    return new ArtifactWriter(instance, dataDir, fileTargets, new LocalSpoolStore(join(dataDir, "spool")), stages, entriesKept);
  }

  close(): void {
    this.duckdbMemory.close();
    this.instance.closeSync();
  }

  async stage(req: StageRequest): Promise<StageResult> {
    const table = req.externalTable;
    if (table.connectionStrings.length === 0) throw invalidArgument(`external table '${table.name}' has no connection string`);
    if ((req.deltaTxnSince ?? 0n) > (req.deltaTxnVersion ?? 0n)) throw invalidArgument(`deltaTxnSince ${req.deltaTxnSince} is above deltaTxnVersion ${req.deltaTxnVersion}`);
    this.inMemory.forget(req.stageId);
    const dir = await this.stages.create(req.stageId);
    const isDelta = table.kind === "delta";
    // Rows the query service encoded in one pass need no DuckDB here unless there are several
    // files to count or a Delta log to write: a small run's latency is mostly such steps (bench #3).
    const encodes = req.encodedFiles.length === 0;
    if (encodes) await mkdir(join(dir, "raw"), { recursive: true });
    const connection = encodes || isDelta || req.encodedFiles.length > 1 ? await this.instance.connect() : undefined;
    const duck = (): DuckDBConnection => {
      if (!connection) throw internal("a stage of one encoded file has no DuckDB connection");
      return connection;
    };
    const tableId = req.stageId.replaceAll("-", "_");
    try {
      const targets = await this.targetsOf(table);
      let snapshotLog: DeltaLog | undefined;
      if (isDelta) {
        const target = deltaTarget(targets, table);
        await mkdir(join(dir, "scratch"), { recursive: true });
        snapshotLog = new DeltaLog(target, duck(), join(dir, "scratch"));
        const snap = await storageCall(() => snapshotLog!.snapshot());
        checkWritable(snap, table);
        // A retry whose earlier attempt committed: report that commit, write nothing.
        const done = req.deltaAppId ? await storageCall(() => committedRun(snapshotLog!, snap, req.deltaAppId!, Number(req.deltaTxnVersion), txnSince(req.deltaTxnSince))) : undefined;
        if (done?.fence) throw new SpillwayError(ErrorCode.aborted, `txn ${req.deltaAppId} version ${req.deltaTxnVersion} of the Delta log was ${FENCED}`);
        if (done) return { artifacts: writtenOf(target, done.adds), alreadyCommitted: true, committedToCursor: done.toCursor };
      }
      const spool = await this.spools.open(req.spoolHandle);
      const groups = !encodes
        ? [{ folder: "", files: req.encodedFiles.map((f) => join(spool, f)), rows: req.spoolRows }]
        : await encodeGroups(duck(), req, join(spool, ROWS_SPOOL_FILE), join(dir, "raw"), tableId);
      const staged: StagedArtifact[] = [];
      const finishing: Array<() => Promise<void>> = [];
      for (const group of groups) {
        for (const [j, file] of group.files.entries()) {
          // Counted from the raw file, before finishing (which may gzip it).
          const rows = group.files.length === 1 ? group.rows : await countRows(duck(), table, file);
          // DuckDB may open a last file after the size limit and find no row left for it.
          if (rows === 0n && group.files.length > 1) continue;
          const k = staged.length;
          const name = isDelta
            ? `part-${String(k).padStart(5, "0")}-${req.stageId}.c000.${table.properties?.compressionType || "snappy"}.parquet`
            : stagedArtifactName(table, req.nameStem, k);
          const localFile = join(dir, `${k}-${name}`);
          const relative = group.folder ? `${group.folder}/${name}` : name;
          // Artifacts spread evenly over the connection strings (SPEC §5).
          const targetIndex = artifactTargetIndex(k, req.spreadKey, targets.length);
          const target = targets[targetIndex]!;
          staged.push({ localFile, name: relative, folder: group.folder, targetIndex, target, path: target.pathOf(relative), numRecords: rows, sizeInBytes: 0n });
          finishing.push(() => finishFile(table, file, localFile, j > 0));
        }
      }
      // gzip runs on libuv's threads: files are finished side by side, one per core.
      await settleAll(finishing, availableParallelism());
      const adds: AddAction[] = [];
      for (const a of staged) {
        a.sizeInBytes = BigInt((await stat(a.localFile)).size);
        if (isDelta) adds.push(await addActionFor(duck(), table, a.localFile, a.name, a.folder));
      }
      const delta = isDelta
        ? { appId: req.deltaAppId ?? "", txnVersion: Number(req.deltaTxnVersion ?? 0n), txnSince: txnSince(req.deltaTxnSince), fromCursor: req.fromCursor ?? "", toCursor: req.toCursor ?? "", adds }
        : undefined;
      await writeStageManifest(dir, {
        table,
        delta,
        artifacts: staged.map((a) => ({
          file: basename(a.localFile),
          name: a.name,
          folder: a.folder,
          target: a.targetIndex,
          path: a.path,
          numRecords: a.numRecords.toString(),
          sizeInBytes: a.sizeInBytes.toString(),
        })),
      });
      this.inMemory.keep(req.stageId, { artifacts: staged, table, delta });
      return { artifacts: staged.map(({ path, numRecords, sizeInBytes }) => ({ path, numRecords, sizeInBytes })), alreadyCommitted: false, committedToCursor: "" };
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    } finally {
      if (encodes) {
        await rm(join(dir, "raw"), { recursive: true, force: true });
        await connection!.run(`DROP TABLE IF EXISTS ${quoteIdent(`__rows_${tableId}`)}`).catch(() => undefined);
        for (const [i] of table.partitions.entries()) await connection!.run(`DROP TABLE IF EXISTS ${hashTableName(tableId, i)}`).catch(() => undefined);
      }
      connection?.closeSync();
    }
  }

  /** A stage as `stage` left it: from memory when this process made it, else from its manifest on disk, whichever writer process staged it. */
  private async stagedRun(stageId: string): Promise<StagedRun | undefined> {
    // Only while its folder is there: memory must not outlive a stage removed from disk.
    const dir = await this.stages.open(stageId).catch(() => undefined);
    const kept = dir && this.inMemory.get(stageId);
    if (kept) return kept;
    const manifest = dir && (await readStageManifest(dir));
    if (!manifest) return undefined;
    const targets = await this.targetsOf(manifest.table);
    const artifacts = manifest.artifacts.map((a) => ({
      localFile: join(dir, a.file),
      name: a.name,
      folder: a.folder,
      targetIndex: a.target,
      target: targets[a.target]!,
      path: a.path,
      numRecords: BigInt(a.numRecords),
      sizeInBytes: BigInt(a.sizeInBytes),
    }));
    return { artifacts, table: manifest.table, delta: manifest.delta };
  }

  /** Uploads what `stage` staged, here or in an earlier life of the writer; safe to repeat (the same names are overwritten) until the stage is discarded. */
  async upload(stageId: string, signal?: AbortSignal): Promise<WrittenArtifact[]> {
    const stage = await this.stagedRun(stageId);
    // Not permanent: the next attempt of the run stages again.
    if (!stage) throw new SpillwayError(ErrorCode.aborted, `stage ${stageId} does not exist (discarded, or never staged); the run must be tried again`);
    if (signal?.aborted) throw unavailable("upload cancelled: the caller went away");
    // A few uploads at once. After a failure none is started, but those under way finish:
    // an upload cut off mid-request might still land after the run's clean-up.
    let failed = false;
    const md5s = new Map<string, string>();
    await settleAll(
      stage.artifacts.map((a) => async () => {
        if (failed) throw unavailable("upload not started: another upload of the run failed");
        try {
          const { md5 } = await uploadWithClassification(a.target, a.name, a.localFile, signal);
          if (md5) md5s.set(a.path, md5);
        } catch (err) {
          failed = true;
          throw err;
        }
      }),
      UPLOAD_CONCURRENCY,
    );
    if (signal?.aborted) throw unavailable("upload cancelled: the caller went away");
    if (stage.delta) {
      // Data files first, then the log entry that makes them part of the table.
      const target = stage.artifacts[0]?.target ?? deltaTarget(await this.targetsOf(stage.table), stage.table);
      const delta = stage.delta;
      const { holder } = await this.withDeltaLog(target, (log) => storageCall(() => commitDelta(log, stage.table, delta, Date.now)));
      // The txn was taken already: by this stage's own commit whose answer was lost (its files
      // are the table's), or by another attempt or a fence, when these files are not the table's.
      const inLog = new Set(holder ? writtenOf(target, holder.adds).map((a) => a.path) : []);
      if (holder && !stage.artifacts.every((a) => inLog.has(a.path))) {
        await this.delete(stage.table, stage.artifacts.map((a) => a.path)).catch(() => undefined);
        await this.discard(stageId);
        throw new SpillwayError(ErrorCode.aborted, `txn ${delta.appId} version ${delta.txnVersion} of the Delta log was ${holder.fence ? FENCED : "committed by another attempt"}; this attempt's files were removed`);
      }
    }
    // The stage stays until the run discards it (DiscardStage, after the answer): an upload
    // whose answer was lost is asked again, and uploads the same files under the same names.
    // The MD5s go to the run's manifest: it need not ask the storage for them again.
    return stage.artifacts.map(({ path, numRecords, sizeInBytes }) => ({ path, numRecords, sizeInBytes, ...(md5s.has(path) ? { md5: md5s.get(path) } : {}) }));
  }

  /** A failed attempt's Delta files that a commit made part of the table must stay. */
  private async withoutCommittedDeltaFiles(table: ExternalTable, paths: string[]): Promise<string[]> {
    const target = deltaTarget(await this.targetsOf(table), table);
    const snap = await this.withDeltaLog(target, (log) => storageCall(() => log.snapshot()));
    const active = new Set([...snap.files.keys()].map((p) => target.pathOf(decodeURIComponent(p))));
    return paths.filter((p) => !active.has(p));
  }

  /**
   * The commit of txn {appId, txnVersion} in the table's Delta log, if one landed: its files
   * and the range it covered. None landed: with `fence`, an empty commit takes the txn as a
   * fence; with `hold`, as the commit of that range (FindDeltaCommitRequest).
   */
  async findDeltaCommit(
    table: ExternalTable,
    appId: string,
    txnVersion: bigint,
    options: { fence?: boolean; sinceVersion?: bigint; hold?: { fromCursor: string; toCursor: string } } = {},
  ): Promise<{ committed: boolean; artifacts: WrittenArtifact[]; toCursor: string }> {
    const { fence = false, sinceVersion = 0n, hold } = options;
    if (table.kind !== "delta") throw invalidArgument(`external table '${table.name}' is not a Delta table`);
    if (!appId || txnVersion <= 0n) throw invalidArgument("appId and a positive txnVersion are required");
    if (sinceVersion > txnVersion) throw invalidArgument(`sinceVersion ${sinceVersion} is above txnVersion ${txnVersion}`);
    const target = deltaTarget(await this.targetsOf(table), table);
    const version = Number(txnVersion);
    const since = txnSince(sinceVersion);
    const done = await this.withDeltaLog(target, async (log) => {
      const found = await storageCall(async () => committedRun(log, await log.snapshot(), appId, version, since));
      if (found || !(fence || hold)) return found;
      // Taken now, so an upload still under way cannot commit it; a commit that won the race is reported.
      const plan = { appId, txnVersion: version, txnSince: since, fromCursor: hold?.fromCursor ?? "", toCursor: hold?.toCursor ?? "", adds: [], fence: !hold };
      const { holder } = await storageCall(() => commitDelta(log, table, plan, Date.now));
      return holder ?? { adds: [], toCursor: plan.toCursor, fence: plan.fence };
    });
    return done && !done.fence ? { committed: true, artifacts: writtenOf(target, done.adds), toCursor: done.toCursor } : { committed: false, artifacts: [], toCursor: "" };
  }

  /** The columns of the Delta table at `connectionStrings`, from its log. */
  async readDeltaSchema(connectionStrings: string[]): Promise<{ columns: Array<{ name: string; type: string }>; partitionColumns: string[]; minWriterVersion: number }> {
    const table = { name: "(new)", connectionStrings } as ExternalTable;
    const snap = await this.withDeltaLog(deltaTarget(await this.targetsOf(table), table), (log) => storageCall(() => log.snapshot()));
    if (!snap.metaData) throw failedPrecondition("there is no Delta table at that location to infer a schema from; give the columns");
    return { columns: columnsFromDeltaSchema(snap.metaData.schemaString), partitionColumns: snap.metaData.partitionColumns, minWriterVersion: snap.protocol?.minWriterVersion ?? 0 };
  }

  /** Runs `task` on the Delta log at `target`, with a DuckDB connection and a scratch folder of its own. */
  private async withDeltaLog<T>(target: StorageTarget, task: (log: DeltaLog) => Promise<T>): Promise<T> {
    const connection = await this.instance.connect();
    const scratch = join(this.dataDir, "tmp/writer", `delta-${randomUUID()}`);
    await mkdir(scratch, { recursive: true });
    try {
      return await task(new DeltaLog(target, connection, scratch));
    } finally {
      connection.closeSync();
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async discard(stageId: string): Promise<void> {
    this.inMemory.forget(stageId);
    await this.stages.discard(stageId);
  }

  /**
   * Removes artifacts (full paths as returned by write) from the table's storage; never a
   * committed Delta file: those are answered as kept.
   */
  async delete(table: ExternalTable, paths: string[]): Promise<{ kept: string[] }> {
    const targets = await this.targetsOf(table);
    const removed = table.kind === "delta" ? await this.withoutCommittedDeltaFiles(table, paths) : paths;
    for (const path of removed) {
      for (const target of targets) {
        const name = nameUnder(target, path);
        if (name !== undefined) {
          await target.delete(name);
          break;
        }
      }
    }
    const gone = new Set(removed);
    return { kept: paths.filter((p) => !gone.has(p)) };
  }

  /**
   * Writes a committed run's manifest at the root of the table's first connection string,
   * filling each file's md5 as its storage reports it (null when it does not), unless the
   * body has it already (reported when the file was uploaded). Overwrites: writing it again
   * after a lost answer gives the same file.
   */
  async writeManifest(table: ExternalTable, name: string, bodyJson: string): Promise<void> {
    if (!name.startsWith("_spillway/manifests/") || name.split("/").includes("..")) throw invalidArgument(`manifest name '${name}' is not under _spillway/manifests/`);
    const targets = await this.targetsOf(table);
    const body = JSON.parse(bodyJson) as { files: Array<{ path: string; md5?: string | null }> };
    for (const file of body.files) {
      if (typeof file.md5 === "string" && file.md5) continue;
      file.md5 = null;
      for (const target of targets) {
        const at = nameUnder(target, file.path);
        if (at !== undefined) {
          file.md5 = (await target.md5(at)) ?? null;
          break;
        }
      }
    }
    await targets[0]!.putOverwrite(name, Buffer.from(`${JSON.stringify(body, null, 2)}\n`));
  }

  /** The table's storage, each file:// folder confined to where the policy allows writing. */
  private targetsOf(table: ExternalTable): Promise<StorageTarget[]> {
    return Promise.all(table.connectionStrings.map((cs) => openConfinedStorageTarget(parseConnectionString(cs), this.fileTargets)));
  }
}

/** The name of artifact `path` within `target`, when it is there: /lake/x is not in /la. */
function nameUnder(target: StorageTarget, path: string): string | undefined {
  const base = target.pathOf("");
  const prefix = base.endsWith("/") ? base : `${base}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : undefined;
}

export interface StageResult {
  artifacts: WrittenArtifact[];
  alreadyCommitted: boolean;
  committedToCursor: string;
}

const UPLOAD_CONCURRENCY = 3;

/** Why a txn's commit is refused when no commit of files holds it. */
const FENCED = "fenced: its operation was ended, or a later claim of it took the batch over";

/** Runs the tasks, at most `limit` at once, until all have settled; then throws the failure that came first, if any. */
async function settleAll(tasks: Array<() => Promise<unknown>>, limit: number): Promise<void> {
  const queue = pLimit(limit);
  let first: { error: unknown } | undefined;
  await Promise.allSettled(
    tasks.map((task) =>
      queue(async () => {
        try {
          await task();
        } catch (error) {
          first ??= { error };
        }
      }),
    ),
  );
  if (first) throw first.error;
}

async function uploadWithClassification(target: StorageTarget, name: string, file: string, signal?: AbortSignal): Promise<PutFile> {
  return storageCall(() => target.put(name, file, signal));
}


interface EncodedGroup {
  /** The partition folder, relative to the connection string's folder ("" when unpartitioned). */
  folder: string;
  files: string[];
  rows: bigint;
}

/** Encodes the spool of rows with DuckDB into files of at most sizeLimit bytes, one group per partition folder. */
async function encodeGroups(connection: DuckDBConnection, req: StageRequest, spoolFile: string, rawDir: string, tableId: string): Promise<EncodedGroup[]> {
  const table = req.externalTable;
  const options = { rowGroupSize: req.rowGroupSize, sizeLimit: Number(req.sizeLimit) };
  const spool = `read_parquet(${quoteLiteral(spoolFile)}) AS s`;
  const copy = (source: string, out: string) => encodeArtifacts(connection, table, source, out, options);
  if (table.partitions.length === 0) return [{ folder: "", ...(await copy(spool, join(rawDir, "p0"))) }];

  await loadHashTables(connection, table, spool, tableId);
  const rowsTable = quoteIdent(`__rows_${tableId}`);
  // One pass computes every row's folder; each folder is then encoded on its own.
  const folder = table.kind === "delta" ? deltaFolderSql(table, tableId) : pathSql(table, tableId);
  await connection.run(`CREATE TABLE ${rowsTable} AS SELECT s.*, ${folder} AS __path FROM ${spool}${hashJoinsSql(table, tableId)}`);
  const folders = (await runMaterialized(connection, `SELECT DISTINCT __path FROM ${rowsTable} ORDER BY 1`)).getRows().map((r) => String(r[0]));
  const groups: EncodedGroup[] = [];
  for (const [i, folder] of folders.entries()) {
    groups.push({ folder, ...(await copy(`${rowsTable} AS s WHERE s.__path = ${quoteLiteral(folder)}`, join(rawDir, `p${i}`))) });
  }
  return groups;
}

/**
 * hash(Column, N) is Kusto's: xxhash64 of the value's UTF-8 bytes, seed 0, modulo N. DuckDB
 * has no xxhash64, so it is computed once per distinct value, not per row.
 */
async function loadHashTables(connection: DuckDBConnection, table: ExternalTable, spool: string, tableId: string): Promise<void> {
  const hasher = await xxhash();
  for (const [i, p] of partitionSpecs(table).entries()) {
    if (p.function !== "hash") continue;
    const name = hashTableName(tableId, i);
    await connection.run(`CREATE TABLE ${name} (k VARCHAR, h BIGINT)`);
    const keys = await runMaterialized(connection, `SELECT DISTINCT CAST(s.${quoteIdent(p.column)} AS VARCHAR) AS k FROM ${spool} WHERE k IS NOT NULL`);
    const appender = await connection.createAppender(name.slice(1, -1));
    for (const [key] of keys.getRows()) {
      appender.appendVarchar(String(key));
      appender.appendBigInt(BigInt.asIntN(64, hasher.h64(String(key)) % p.modulo));
      appender.endRow();
    }
    appender.closeSync();
  }
}

async function finishFile(table: ExternalTable, raw: string, out: string, laterFile: boolean): Promise<void> {
  if (table.dataFormat === "parquet") {
    // A link, not a move: the spool stays whole for a retried stage until the run discards it.
    await link(raw, out).catch((err: NodeJS.ErrnoException) => (err.code === "EXDEV" ? copyFile(raw, out) : Promise.reject(err)));
    return;
  }
  const p = table.properties;
  await finishTextFile(raw, out, {
    bom: p?.encoding === "UTF8BOM",
    dropHeader: p?.includeHeaders === "firstFile" && laterFile,
    gzip: p?.compressed ?? false,
  });
}

/** Records in one encoded file: Parquet from its footer, text by reading it back with DuckDB. */
async function countRows(connection: DuckDBConnection, table: ExternalTable, file: string): Promise<bigint> {
  const f = quoteLiteral(file);
  const header = table.properties?.includeHeaders === "all" || table.properties?.includeHeaders === "firstFile";
  const sql =
    table.dataFormat === "parquet"
      ? `SELECT sum(num_rows) FROM parquet_file_metadata(${f})`
      : table.dataFormat === "json"
        ? `SELECT count(*) FROM read_json(${f}, format = 'newline_delimited', columns = {'x': 'JSON'})`
        : `SELECT count(*) FROM read_csv(${f}, header = ${header}, auto_detect = false, all_varchar = true, delim = ${quoteLiteral(table.dataFormat === "tsv" ? "\t" : ",")}, quote = '"', escape = '"', columns = {${table.columns.map((c, i) => `'c${i}': 'VARCHAR'`).join(", ")}})`;
  return BigInt(String((await runMaterialized(connection, sql)).getRows()[0]![0]));
}

/** A batch's first txn version (StageArtifactsRequest.delta_txn_since); undefined, when 0, for the version alone. */
function txnSince(since: bigint | undefined): number | undefined {
  return since ? Number(since) : undefined;
}

/** A Delta commit's add actions as the artifacts they are: full path, records (from the file's stats), size. */

function writtenOf(target: StorageTarget, adds: AddAction[]): WrittenArtifact[] {
  return adds.map((a) => ({ path: target.pathOf(decodeURIComponent(a.path)), numRecords: BigInt(JSON.parse(a.stats).numRecords ?? 0), sizeInBytes: BigInt(a.size) }));
}
