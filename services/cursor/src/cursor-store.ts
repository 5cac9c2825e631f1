import { quoteLiteral } from "@spillway/duck";
import { ErrorCode, failedPrecondition, invalidArgument, SpillwayError } from "@spillway/errors";
import { cursorText, ticksFromEpochMs } from "@spillway/kusto";
import { openMetadataDb, type MetadataDb, type MetadataSession, type SqlRow, type SqlStatement, type SqlValue } from "@spillway/metadata";

export interface ExtentRecord {
  database: string;
  table: string;
  extentId: string;
  path: string;
  rowCount: bigint;
  sizeBytes: bigint;
  cursor: bigint;
}

export interface ExportStateRecord {
  exportId: string;
  database: string;
  name: string;
  startCursor: bigint;
  checkpointCursor: bigint;
  runCount: bigint;
  lastRunResult: string;
  lastRunTime?: Date;
  lastRunStart?: Date;
  lastSuccessTime?: Date;
  /** A run holds the export's lease now. */
  isRunning: boolean;
  /** Why the scheduler disabled the export on its own; '' when it did not. */
  systemDisabled: string;
  /** The commit log's last cursor as read with the state (getExportStates only). */
  currentCursor?: bigint;
}

export interface ArtifactRecord {
  timestamp: Date;
  externalTable: string;
  path: string;
  numRecords: bigint;
  sizeBytes: bigint;
}

/** One run as the history shows it. */
export interface RunRecord {
  runId: string;
  exportId: string;
  database: string;
  name: string;
  runNumber: bigint;
  result: string;
  from: bigint;
  to: bigint;
  startedAt: Date;
  finishedAt?: Date;
  details: string;
  /** The run's RunResources message as JSON; '' when none was recorded (a run a dead process left). */
  resources: string;
}

/** A manifest to write to storage (DueManifest). */
export interface DueManifestRecord {
  key: string;
  database: string;
  externalTable: string;
  name: string;
  body: string;
}

/** How far a backfill has come (BackfillProgress). */
export interface BackfillRecord {
  operationId: string;
  exportId: string;
  state: string;
  status: string;
  from: bigint;
  to: bigint;
  done: bigint;
  recordsDone: bigint;
  recordsTotal: bigint;
  batchesDone: bigint;
  batchesTotal: bigint;
}

/** A one-shot operation as the ledger keeps it. */
export interface OperationRecord {
  operationId: string;
  database: string;
  operation: string;
  /** What to run (no secrets), as JSON. */
  request: string;
  state: "InProgress" | "Completed" | "Failed" | "Canceled";
  status: string;
  /** The scheduler running it; '' before one took it. */
  owner: string;
  cancelRequested: boolean;
  /** The step it has reached while InProgress ('' before one took it). */
  phase: string;
  startedAt: Date;
  updatedAt: Date;
  /** Its RunResources message as JSON, once it ended; ''. */
  resources: string;
}

export interface FailureRecord {
  timestamp: Date;
  operationId: string;
  name: string;
  lastSuccessRun?: Date;
  /** CursorReset: not a failure, the checkpoint moved by an admin (replay), kept in the same history. */
  failureKind: "Failure" | "PartialFailure" | "CursorReset";
  details: string;
  isPermanent: boolean;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS clock (last_cursor BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS extents (
     database VARCHAR NOT NULL, table_name VARCHAR NOT NULL, extent_id VARCHAR NOT NULL,
     path VARCHAR NOT NULL, row_count BIGINT NOT NULL, size_bytes BIGINT NOT NULL,
     cursor BIGINT NOT NULL, committed_at TIMESTAMP NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS export_state (
     export_id VARCHAR NOT NULL, database VARCHAR NOT NULL, name VARCHAR NOT NULL,
     start_cursor BIGINT NOT NULL, checkpoint_cursor BIGINT NOT NULL, run_count BIGINT NOT NULL,
     last_run_result VARCHAR NOT NULL, last_run_time TIMESTAMP, last_run_start TIMESTAMP,
     last_success_time TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS runs (
     run_id VARCHAR NOT NULL, export_id VARCHAR NOT NULL, run_number BIGINT NOT NULL,
     from_cursor BIGINT NOT NULL, to_cursor BIGINT NOT NULL, started_at TIMESTAMP NOT NULL,
     finished_at TIMESTAMP, result VARCHAR NOT NULL, details VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS artifacts (
     export_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, external_table VARCHAR NOT NULL,
     path VARCHAR NOT NULL, num_records BIGINT NOT NULL, size_bytes BIGINT NOT NULL,
     committed_at TIMESTAMP NOT NULL)`,
  // Artifacts a run is about to upload: recorded before the upload, removed by the
  // run's commit. What is left belongs to a failed attempt and is deleted before the next.
  `CREATE TABLE IF NOT EXISTS pending_artifacts (
     export_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, path VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS failures (
     export_id VARCHAR NOT NULL, operation_id VARCHAR NOT NULL, name VARCHAR NOT NULL,
     failed_at TIMESTAMP NOT NULL, last_success_run TIMESTAMP, failure_kind VARCHAR NOT NULL,
     details VARCHAR NOT NULL, is_permanent BOOLEAN NOT NULL)`,
  // Extents of dropped tables whose files the query service has yet to delete.
  `CREATE TABLE IF NOT EXISTS dropped_extents (extent_id VARCHAR NOT NULL, path VARCHAR NOT NULL)`,
  // Why the scheduler disabled the export on its own (SPEC §3: 7 days of permanent failures); '' when it did not.
  `ALTER TABLE export_state ADD COLUMN IF NOT EXISTS system_disabled VARCHAR DEFAULT ''`,
  // Runs that committed, kept as a count: counting the runs table on every run grew with its history.
  `ALTER TABLE export_state ADD COLUMN IF NOT EXISTS completed_runs BIGINT`,
  `UPDATE export_state SET completed_runs = (SELECT count(*) FROM runs r WHERE r.export_id = export_state.export_id AND r.result = 'Completed') WHERE completed_runs IS NULL`,
  // A run's record is found by its id when it ends, among every run kept.
  `CREATE INDEX IF NOT EXISTS runs_by_run_id ON runs (run_id)`,
  // Nodes sharing the store, by their last heartbeat: runs split over the live ones.
  `CREATE TABLE IF NOT EXISTS nodes (node_id VARCHAR NOT NULL, address VARCHAR NOT NULL, seen_at TIMESTAMP NOT NULL)`,
  // What each run cost (ShowRunHistory): its RunResources message as JSON, opaque to the store.
  `ALTER TABLE runs ADD COLUMN IF NOT EXISTS resources VARCHAR`,
  // A run history is read by export and start time.
  `CREATE INDEX IF NOT EXISTS runs_by_export ON runs (export_id, started_at)`,
  // One-shot operations (ExportToTable): taken by one scheduler under a lease (owner, expires_at);
  // their journal and artifacts are pending_artifacts and artifacts rows under the operation's id.
  `CREATE TABLE IF NOT EXISTS operations (
     operation_id VARCHAR NOT NULL, database VARCHAR NOT NULL, operation VARCHAR NOT NULL, request VARCHAR NOT NULL,
     state VARCHAR NOT NULL, status VARCHAR NOT NULL, owner VARCHAR NOT NULL, expires_at TIMESTAMP,
     cancel_requested BOOLEAN NOT NULL, started_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, resources VARCHAR NOT NULL)`,
  // Kusto's extent tags (ingest-by:...), for idempotent ingestion; they go with their extent.
  `CREATE TABLE IF NOT EXISTS extent_tags (database VARCHAR NOT NULL, table_name VARCHAR NOT NULL, extent_id VARCHAR NOT NULL, tag VARCHAR NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS extent_tags_by_tag ON extent_tags (database, table_name, tag)`,
  // Managed backfills: each an operation; done_cursor is where its next batch starts, moved by each batch's commit.
  `CREATE TABLE IF NOT EXISTS backfills (
     operation_id VARCHAR NOT NULL, export_id VARCHAR NOT NULL, from_cursor BIGINT NOT NULL, to_cursor BIGINT NOT NULL,
     done_cursor BIGINT NOT NULL, records_done BIGINT NOT NULL, records_total BIGINT NOT NULL,
     batches_done BIGINT NOT NULL, batches_total BIGINT NOT NULL, created_at TIMESTAMP NOT NULL)`,
  // When an extent was dropped: its file waits a while, for queries and runs that were reading it.
  `ALTER TABLE dropped_extents ADD COLUMN IF NOT EXISTS dropped_at TIMESTAMP`,
  // Manifests of committed runs still to write to storage: inserted by the commit itself, so
  // one exists for every committed run, and only for those; removed once written.
  `CREATE TABLE IF NOT EXISTS due_manifests (
     key VARCHAR NOT NULL, database VARCHAR NOT NULL, external_table VARCHAR NOT NULL, name VARCHAR NOT NULL,
     body VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)`,
  // The step an operation in progress is at, for those following it.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS phase VARCHAR DEFAULT ''`,
  // One owner per export run: a scheduler holds the export's lease while it runs it. Kept in
  // the export's row, which opening and committing a run write anyway: a table of its own cost
  // a run four statements (bench #3). Leases held in the old table move with the upgrade
  // (LEASES_TABLE_MOVE).
  `ALTER TABLE export_state ADD COLUMN IF NOT EXISTS lease_owner VARCHAR`,
  `ALTER TABLE export_state ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMP`,
  // How many times each operation was claimed: a Delta backfill's txn versions carry it (claimOperation).
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS claims BIGINT DEFAULT 0`,
  // Whether it had been claimed when claims began to be numbered (claimOperation).
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS claimed_before_numbering BOOLEAN DEFAULT false`,
];

/**
 * A store of the version that kept leases in a table of their own: they move into the export's
 * row, and the table goes. A node of that version still running on a shared store fails its
 * runs rather than run beside this one (README: every node runs the same version).
 */
const LEASES_TABLE_MOVE = [
  `UPDATE export_state SET lease_owner = l.owner, lease_expires_at = l.expires_at FROM leases l WHERE l.export_id = export_state.export_id AND export_state.lease_owner IS NULL`,
  `DROP TABLE leases`,
];

const dateOf = (v: unknown): Date | undefined => (v instanceof Date ? v : undefined);
/** How long a dropped extent's file is kept for readers that listed it before (set-or-replace, drop table), by default. */
const DROPPED_EXTENT_GRACE_MS = 5 * 60_000;
/** How long the artifacts, runs and failures of an export are kept (Kusto's .show exports artifacts: 14 days). */
export const HISTORY_RETENTION_MS = 14 * 86_400_000;
/**
 * What opening a run reads: the export's row and the clock, in one statement, only the columns
 * it needs. A run's latency is mostly such statements (bench #3): in DuckDB this join costs
 * 0.6 ms less than the clock as a subquery, and the row's every column 0.5 ms more.
 */
const RUN_STATE_COLUMNS = "s.checkpoint_cursor, s.system_disabled, s.run_count, s.completed_runs, s.lease_owner, s.lease_expires_at, s.last_run_start, s.last_run_time, c.last_cursor AS __last_cursor";
const RUN_STATE_SQL = `SELECT ${RUN_STATE_COLUMNS} FROM export_state s, clock c WHERE s.export_id = $1`;
/** RUN_STATE_SQL, and whether failed attempts left files to remove: a run reads their list only when they did. */
const START_STATE_SQL = `SELECT ${RUN_STATE_COLUMNS}, EXISTS (SELECT 1 FROM pending_artifacts p WHERE p.export_id = $1) AS __has_pending
  FROM export_state s, clock c WHERE s.export_id = $1`;
/** Why a run a process left Running, found as a scheduler starts, failed. */
const STOPPED_BEFORE_COMMIT = "the process running this export stopped before the run committed; the next run covers the same records";
/** How long a drop holds an export (holdForDrop) unless it lets go first. */
const DROP_HOLD_MS = 60_000;
/** Exports whose backlogs one statement reads (exportBacklogs). */
const BACKLOG_EXPORTS_PER_STATEMENT = 200;
// Rows of one artifacts INSERT: a bulk run may have thousands, and PostgreSQL binds each value as a parameter.
const ARTIFACT_ROWS_PER_INSERT = 64;

/**
 * The commit log and export state, in one DuckDB file or a PostgreSQL database shared by
 * nodes (libs/metadata). Every method is one task that runs as if alone, so "read the last
 * cursor, assign the next, make the extent visible" is atomic and cursor order is
 * visibility order (SPEC §2): on PostgreSQL, extent commits all update the one clock row.
 */
export class CursorStore {
  private constructor(
    private readonly db: MetadataDb,
    private readonly now: () => number,
    /** How long a dropped extent's file waits for readers that listed it before. */
    private readonly droppedExtentGraceMs: number,
  ) {}

  /** The store on PostgreSQL at `metadataUrl` when given, else in `<dataDir>/cursor.duckdb`. */
  static async open(dataDir: string, now: () => number = Date.now, metadataUrl?: string, droppedExtentGraceMs = DROPPED_EXTENT_GRACE_MS): Promise<CursorStore> {
    const db = await openMetadataDb(metadataUrl, dataDir, "cursor.duckdb");
    try {
      await db.migrate(SCHEMA);
      const leasesTable = async () => (await db.select("SELECT 1 FROM information_schema.tables WHERE table_name = 'leases' AND table_schema = current_schema()")).length > 0;
      // On a shared store another node starting beside this one may have moved them first.
      if (await leasesTable()) await db.migrate(LEASES_TABLE_MOVE).catch(async (err) => {
        if (await leasesTable()) throw err;
      });
      await db.transaction(async (q) => {
        const row = await q.one("SELECT count(*) AS n FROM clock");
        if (row!.n === 0n) await q.run("INSERT INTO clock VALUES (0)");
      });
    } catch (err) {
      await db.close();
      throw err;
    }
    return new CursorStore(db, now, droppedExtentGraceMs);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async currentCursor(): Promise<bigint> {
    return this.db.read((q) => lastCursor(q));
  }

  async commitExtent(extent: Omit<ExtentRecord, "cursor">): Promise<bigint> {
    return (await this.commitTaggedExtent(extent, [], [])).cursor!;
  }

  /**
   * Commits an extent with its tags, unless one of `ifNotExists` is already on an extent of
   * its table (then nothing is committed: skipped). The check and the commit are one task, so
   * two ingestions with the same tag commit once between them.
   */
  async commitTaggedExtent(extent: Omit<ExtentRecord, "cursor">, tags: string[], ifNotExists: string[], replace = false): Promise<{ cursor?: bigint; skipped: boolean }> {
    return this.db.transaction(async (q) => {
      if (ifNotExists.length && (await foundTags(q, extent.database, extent.table, ifNotExists)).length) return { skipped: true };
      // set-or-replace: the table's extents so far go (their files to the collector), in the same commit.
      if (replace) await dropExtentsOf(q, extent.database, extent.table, new Date(this.now()));
      const last = await lastCursor(q);
      const nowTicks = ticksFromEpochMs(this.now());
      const cursor = nowTicks > last ? nowTicks : last + 1n;
      await q.run("UPDATE clock SET last_cursor = $1", [cursor]);
      await q.run("INSERT INTO extents VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", [
        extent.database,
        extent.table,
        extent.extentId,
        extent.path,
        extent.rowCount,
        extent.sizeBytes,
        cursor,
        new Date(this.now()),
      ]);
      for (const tag of new Set(tags)) await q.run("INSERT INTO extent_tags VALUES ($1, $2, $3, $4)", [extent.database, extent.table, extent.extentId, tag]);
      return { cursor, skipped: false };
    });
  }

  /** Which of `tags` some extent of the table carries. */
  async findExtentTags(database: string, table: string, tags: string[]): Promise<string[]> {
    if (tags.length === 0) return [];
    return this.db.read((q) => foundTags(q, database, table, tags));
  }

  /** Extents of `tables` with after < cursor ≤ upTo, and the cursor the listing is consistent with. */
  async listExtents(database: string, tables: string[], after: bigint, upTo?: bigint): Promise<{ extents: ExtentRecord[]; cursor: bigint }> {
    // One statement, the clock with the extents up to it (a row of NULLs when none): a run's query binds its tables with it (bench #3).
    const bound = upTo === undefined ? "c.last_cursor" : "LEAST(c.last_cursor, $3)";
    const rows = await this.db.select(
      `SELECT ${bound} AS __limit, e.* FROM clock c LEFT JOIN extents e
       ON e.database = $1 AND e.table_name IN (${inList(tables)}) AND e.cursor > $2 AND e.cursor <= ${bound} ORDER BY e.cursor`,
      upTo === undefined ? [database, after] : [database, after, upTo],
    );
    return { extents: rows.filter((r) => r.extent_id !== null).map(extentOf), cursor: rows[0]!.__limit as bigint };
  }

  /** Forgets a dropped table's extents; returns their paths so the files can be removed. */
  /**
   * Makes a table's extents invisible at once and keeps their files' names for the query
   * service, which owns the files and deletes them (forgetDroppedExtents once it has).
   */
  async dropTableExtents(database: string, table: string): Promise<string[]> {
    return this.db.transaction((q) => dropExtentsOf(q, database, table, new Date(this.now())));
  }

  /** Extents dropped whose files may still exist, oldest first. */
  async droppedExtents(limit: number): Promise<Array<{ extentId: string; path: string }>> {
    // Dropped a while ago: a query or run that listed the extent before it was dropped has had time to read it.
    const before = new Date(this.now() - this.droppedExtentGraceMs);
    const rows = await this.db.exclusive((q) => q.all("SELECT extent_id, path FROM dropped_extents WHERE dropped_at IS NULL OR dropped_at < $2 ORDER BY extent_id LIMIT $1", [limit, before]));
    return rows.map((r) => ({ extentId: String(r.extent_id), path: String(r.path) }));
  }

  async forgetDroppedExtents(extentIds: string[]): Promise<void> {
    if (extentIds.length === 0) return;
    await this.db.exclusive((q) => q.run(`DELETE FROM dropped_extents WHERE extent_id IN (${inList(extentIds)})`));
  }

  /** Creates an export's state at the current cursor: it exports what is ingested from now on. */
  async initExportState(exportId: string, database: string, name: string): Promise<ExportStateRecord> {
    return this.db.transaction((q) => initState(q, exportId, database, name, this.now()));
  }

  async getExportStates(exportIds: string[]): Promise<ExportStateRecord[]> {
    // One statement: no transaction around it (a listing of every export asks this each time).
    // The clock comes with it, so a scheduler launching a run need not read its range again.
    const rows = await this.db.select(`SELECT s.*, c.last_cursor AS __last_cursor FROM export_state s, clock c WHERE s.export_id IN (${inList(exportIds)})`);
    const now = this.now();
    return rows.map((r) => stateOf(r, now));
  }

  async dropExportState(exportId: string): Promise<void> {
    await this.db.transaction(async (q) => {
      for (const table of ["export_state", "runs", "artifacts", "failures"]) {
        await q.run(`DELETE FROM ${table} WHERE export_id = $1`, [exportId]);
      }
    });
  }

  /** Takes the export's lease for `ttlMs` if it is free, expired or already ours. */
  async acquireLease(exportId: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.db.transaction((q) => takeLease(q, exportId, owner, ttlMs, this.now()));
  }

  /**
   * The cursor range a run of the export would take now (after the checkpoint, up to
   * `upTo(current cursor)`), read beside writes: a run's query starts on it while startRun,
   * given its upper end, opens the run (bench #3). `leasedElsewhere` says another owner than
   * `owner` holds an unexpired lease: a run would not open, so no query should start. Refused
   * as startRun refuses: no state, or disabled by the scheduler.
   */
  async runRange(exportId: string, name: string, owner: string, upTo: (current: bigint) => bigint): Promise<{ from: bigint; to: bigint; leasedElsewhere: boolean }> {
    const [row] = await this.db.select(
      RUN_STATE_SQL,
      [exportId],
    );
    const { state, from, to } = openableRange(row, name, upTo);
    return { from, to, leasedElsewhere: leasedElsewhere(state, owner, this.now()) };
  }

  /**
   * Opens a run in one transaction: takes the export's lease, fixes the run's cursor range
   * (from the checkpoint up to `upTo(current cursor)`), records the run as Running, and
   * reads what the run needs next. Undefined when another owner holds the lease; throws
   * ExportGoneError when the export has no state (it is being dropped: the catalog creates
   * the state with the export, so a run must never bring it back).
   */
  async startRun(start: { exportId: string; name: string; runId: string; owner: string; leaseTtlMs: number; upTo: (current: bigint) => bigint }): Promise<StartedRun | undefined> {
    const { exportId, runId } = start;
    return this.db.transaction(async (q) => {
      const now = this.now();
      const existing = await q.one(START_STATE_SQL, [exportId]);
      // Checked here, in the step that opens a run, so asking to run costs no read of its own.
      const { state, from, to } = openableRange(existing, start.name, start.upTo);
      if (leasedElsewhere(state, start.owner, now)) return undefined;
      // The latest run never ended: its lease expired and is taken now, or it was let go with
      // the run left Running (its failure could not be recorded). It can no longer commit
      // (commitRun checks the owner), and an owner runs one run of an export at a time.
      if (runNotEnded(state)) await failSupersededRun(q, exportId, state.run_count as bigint, start.name, now, supersededWhy(state, start.owner));
      const runNumber = await openRun(q, exportId, runId, from, to, now, state.run_count as bigint, { owner: start.owner, expiresAt: new Date(now + start.leaseTtlMs) });
      // Runs that committed: the next successful run is number count + 1 (retries share it).
      return { runNumber, from, to, startedAt: new Date(now), completedRuns: state.completed_runs as bigint, pending: state.__has_pending ? await pendingOf(q, exportId) : [] };
    });
  }

  /**
   * Extends our lease; false when it was lost (taken by another owner, or released). One that
   * expired but that no one took is still ours (see `commitRun`): renewing it is on time.
   */
  async renewLease(exportId: string, owner: string, ttlMs: number): Promise<boolean> {
    const renewed = await this.db.transaction((q) =>
      q.change("UPDATE export_state SET lease_expires_at = $3 WHERE export_id = $1 AND lease_owner = $2", [exportId, owner, new Date(this.now() + ttlMs)]),
    );
    return renewed > 0;
  }

  /**
   * Drops every lease when this process alone holds the store (DuckDB): the leases there are
   * of a process that died, and must not hold its exports back until they expire. A shared
   * store's leases are other nodes' too: they only expire.
   */
  async releaseAllLeases(): Promise<void> {
    if (this.db.shared) return;
    await this.db.exclusive(async (q) => {
      await q.run("UPDATE export_state SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner IS NOT NULL");
      // Operations the dead process held are taken at once by the next claim, which cleans them up.
      await q.run("UPDATE operations SET expires_at = $1 WHERE state = 'InProgress' AND owner <> ''", [new Date(this.now() - 1)]);
    });
  }

  async releaseLease(exportId: string, owner: string): Promise<void> {
    await this.db.transaction((q) => releaseIn(q, exportId, owner));
  }

  /**
   * Records, before they are uploaded, the artifacts a run is about to write. With `owner`,
   * only while that owner holds the export's lease (as commitRun checks it): a run fenced out
   * since it last renewed, or whose export was dropped, is refused here and uploads nothing.
   */
  async journalPending(exportId: string, runId: string, paths: string[], owner?: string): Promise<void> {
    if (paths.length === 0) return;
    const now = new Date(this.now());
    // A transaction, not an exclusive task, so it joins the group commit of the runs beside it
    // (libs/duck SerialConnection); unfenced, its write goes with the commit, in one call (runAll).
    if (owner === undefined) {
      const rows = paths.map((_, i) => `($1, $2, $${i + 4}, $3)`).join(", ");
      await this.db.transaction((q) => q.runAll([[`INSERT INTO pending_artifacts VALUES ${rows}`, [exportId, runId, now, ...paths]]]));
      return;
    }
    await this.db.transaction(async (q) => {
      const journaled = await journalWhereHeld(q, "export_state s WHERE s.export_id = $1::VARCHAR AND s.lease_owner = $4::VARCHAR", exportId, runId, now, owner, paths);
      if (journaled > 0) return;
      const exists = await q.one("SELECT 1 AS found FROM export_state WHERE export_id = $1", [exportId]);
      // Not permanent, as at the commit: the run was superseded, its export is not broken.
      if (!exists) throw new RunRaceError("the export was dropped during the run: the run uploads nothing");
      throw new LeaseLostError(`the lease on export ${exportId} was lost during the run (another scheduler took it, or a drop holds it): the run uploads nothing`);
    });
  }

  /**
   * Records, before they are uploaded, the files an operation's attempt is about to write:
   * only while `owner` holds the operation (InProgress under that claim; an expired lease no
   * other claim took is still its own, as finishOperation checks it). An attempt another claim
   * took over is refused here, and uploads nothing.
   */
  async journalOperationPending(operationId: string, runId: string, paths: string[], owner: string): Promise<void> {
    if (paths.length === 0) return;
    const now = new Date(this.now());
    await this.db.transaction(async (q) => {
      const journaled = await journalWhereHeld(q, "operations o WHERE o.operation_id = $1::VARCHAR AND o.owner = $4::VARCHAR AND o.state = 'InProgress'", operationId, runId, now, owner, paths);
      if (journaled === 0) throw new LeaseLostError(`operation ${operationId} is no longer this scheduler's: the attempt uploads nothing`);
    });
  }

  /** Artifacts of failed attempts (journaled, never committed) still to be removed from storage. */
  async pendingArtifacts(exportId: string): Promise<PendingArtifact[]> {
    return this.db.read((q) => pendingOf(q, exportId));
  }

  async clearPending(exportId: string, paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.db.transaction((q) => q.run(`DELETE FROM pending_artifacts WHERE export_id = $1 AND path IN (${inList(paths)})`, [exportId]));
  }

  /** Opens a run: a new run number, recorded as Running. */
  async beginRun(exportId: string, runId: string, from: bigint, to: bigint): Promise<bigint> {
    return this.db.transaction(async (q) => {
      const state = await q.one("SELECT run_count FROM export_state WHERE export_id = $1", [exportId]);
      if (!state) throw new ExportGoneError(`export ${exportId} has no state`);
      return openRun(q, exportId, runId, from, to, this.now(), state.run_count as bigint);
    });
  }

  /**
   * Commits a run: its artifacts and the new checkpoint in one transaction, only if
   * the checkpoint is still where the run started from (no other run got there first).
   */
  async commitRun(exportId: string, runId: string, externalTable: string, from: bigint, to: bigint, artifacts: Omit<ArtifactRecord, "timestamp" | "externalTable">[], owner: string, resources = "", manifest?: DueManifestRecord): Promise<ArtifactRecord[]> {
    return this.db.transaction(async (q) => {
      const now = new Date(this.now());
      // Only while the checkpoint is where the run began and the run's owner still holds the
      // lease. Expiry only lets another owner take the lease (startRun, whose run then removes
      // the files the journal lists, this run's among them; a drop, holdForDrop) or a starting
      // scheduler, or a sweep three leases on, free it (failAbandonedRun): until one of them
      // rewrites the owner, the lease is still this run's, so a run whose renewals came late
      // still commits, and one fenced out does not (README "A node paused mid-run"). The run is
      // over: its lease goes with the commit. The checks are in the write itself, a statement
      // fewer than reading first (bench #3); a refusal reads why.
      const moved = await q.change(
        `UPDATE export_state SET checkpoint_cursor = $2, last_run_result = 'Completed', last_run_time = $3, last_success_time = $3, completed_runs = completed_runs + 1,
           lease_owner = NULL, lease_expires_at = NULL WHERE export_id = $1 AND checkpoint_cursor = $4 AND lease_owner = $5`,
        [exportId, to, now, from, owner],
      );
      if (moved === 0) {
        const state = await q.one("SELECT checkpoint_cursor, lease_owner FROM export_state WHERE export_id = $1", [exportId]);
        if (!state) throw new RunRaceError("the export was dropped during the run");
        if (state.lease_owner !== owner) throw new LeaseLostError(`the lease on export ${exportId} was lost during the run`);
        throw new RunRaceError(`checkpoint moved from ${from} to ${state.checkpoint_cursor} during the run`);
      }
      // The rest in one call: nothing of it is read back.
      await q.runAll([
        ["UPDATE runs SET result = 'Completed', finished_at = $2, resources = $3 WHERE run_id = $1", [runId, now, resources]],
        // Its own journal, and an earlier attempt's entries for the files it records (a Delta
        // log's commit of the run's txn, which the writer kept when it removed the rest).
        artifacts.length
          ? [`DELETE FROM pending_artifacts WHERE run_id = $1 OR (export_id = $2 AND path IN (${inList(artifacts.map((a) => a.path))}))`, [runId, exportId]]
          : ["DELETE FROM pending_artifacts WHERE run_id = $1", [runId]],
        ...artifactInserts(exportId, runId, externalTable, artifacts, now),
        ...(manifest ? [dueManifestInsert(manifest, now)] : []),
      ]);
      return artifacts.map((a) => ({ ...a, externalTable, timestamp: now }));
    });
  }

  /** Records a failed run; `owner`'s lease, if given, goes with it. */
  async failRun(exportId: string, runId: string, failure: Omit<FailureRecord, "timestamp" | "lastSuccessRun">, owner?: string, resources = ""): Promise<void> {
    await this.db.transaction(async (q) => {
      if (owner !== undefined) await releaseIn(q, exportId, owner);
      await failIn(q, exportId, runId, new Date(this.now()), failure, resources);
    });
  }

  /** Per export: the records in its fact tables after its checkpoint, and the cursor of the oldest. */
  async exportBacklogs(exports: Array<{ exportId: string; database: string; factTables: string[] }>): Promise<Array<{ exportId: string; records: bigint; oldestCursor?: bigint }>> {
    // One statement per BACKLOG_EXPORTS_PER_STATEMENT exports, not one per export: a listing of
    // 1,000 exports (asked every second by a sampler in bench #6b) was a read of 1,000
    // statements, long enough to hold up DuckDB's checkpoints and every read behind them.
    // Found by the export's place in the list: an export listed twice is answered twice.
    const found = new Map<number, { records: bigint; oldestCursor?: bigint }>();
    for (let first = 0; first < exports.length; first += BACKLOG_EXPORTS_PER_STATEMENT) {
      const rows: string[] = [];
      const params: string[] = [];
      exports.slice(first, first + BACKLOG_EXPORTS_PER_STATEMENT).forEach((e, i) => {
        for (const table of new Set(e.factTables)) {
          params.push(e.exportId, e.database, table);
          const n = params.length;
          rows.push(`(${first + i}, $${n - 2}::VARCHAR, $${n - 1}::VARCHAR, $${n}::VARCHAR)`);
        }
      });
      if (!rows.length) continue;
      const sums = await this.db.select(
        `SELECT w.place, sum(x.row_count) AS records, min(x.cursor) AS oldest
           FROM (VALUES ${rows.join(", ")}) AS w(place, export_id, db, table_name)
           JOIN export_state s ON s.export_id = w.export_id
           JOIN extents x ON x.database = w.db AND x.table_name = w.table_name AND x.cursor > s.checkpoint_cursor
          GROUP BY w.place`,
        params,
      );
      // sum() of BIGINT is a wider number in both databases: read it as a whole number.
      for (const r of sums) found.set(Number(r.place), { records: r.records === null ? 0n : BigInt(String(r.records)), oldestCursor: r.oldest === null ? undefined : (r.oldest as bigint) });
    }
    return exports.map((e, place) => ({ exportId: e.exportId, ...(found.get(place) ?? { records: 0n, oldestCursor: undefined }) }));
  }

  /** Records that `nodeId` is alive at `address`; forgets nodes not heard from for a day. */
  async heartbeat(nodeId: string, address: string): Promise<void> {
    await this.db.transaction(async (q) => {
      const now = this.now();
      await q.run("DELETE FROM nodes WHERE node_id = $1 OR seen_at < $2", [nodeId, new Date(now - 86_400_000)]);
      await q.run("INSERT INTO nodes VALUES ($1, $2, $3)", [nodeId, address, new Date(now)]);
    });
  }

  /** Nodes heard from within `maxAgeMs`, by node id. */
  async liveNodes(maxAgeMs: number): Promise<Array<{ nodeId: string; address: string }>> {
    const rows = await this.db.read((q) => q.all("SELECT node_id, address FROM nodes WHERE seen_at >= $1 ORDER BY node_id", [new Date(this.now() - maxAgeMs)]));
    return rows.map((r) => ({ nodeId: String(r.node_id), address: String(r.address) }));
  }

  /** Disables the export on the scheduler's own account (with the reason), or clears that ('' as reason). */
  async setSystemDisabled(exportId: string, reason: string): Promise<void> {
    await this.db.exclusive((q) => q.run("UPDATE export_state SET system_disabled = $2 WHERE export_id = $1", [exportId, reason]));
  }

  /**
   * Moves an export's checkpoint to `cursor` (replay: its next run exports what comes after),
   * refused while a run holds the export; recorded in its failures history as a CursorReset
   * with `note`. The cursor may not be beyond the current one. Returns the checkpoint it left.
   */
  async resetCheckpoint(exportId: string, name: string, cursor: bigint, note: string): Promise<bigint> {
    return this.db.transaction(async (q) => {
      const state = await q.one("SELECT s.checkpoint_cursor, s.last_success_time, s.lease_owner, s.lease_expires_at, c.last_cursor AS __last_cursor FROM export_state s, clock c WHERE s.export_id = $1", [exportId]);
      if (!state) throw new ExportGoneError(`continuous export '${name}' no longer exists`);
      const current = state.__last_cursor as bigint;
      if (cursor > current) throw invalidArgument(`cursor ${cursor} is beyond the current cursor ${current}: nothing has that cursor yet`);
      // A run in flight holds the lease; none can take it while this transaction runs.
      if (leaseOwner(state, this.now()) !== undefined) {
        throw failedPrecondition(`continuous export '${name}' has a run in flight; reset its cursor once the run has ended`);
      }
      const backfilling = await backfillInProgress(q, exportId);
      if (backfilling) throw failedPrecondition(`continuous export '${name}' has a backfill in progress (operation ${backfilling}); reset its cursor once it has ended`);
      // A failed attempt whose files are still journaled (or a run a dead process left) may have
      // committed to a Delta log; the next run settles it, and only then may the checkpoint move.
      const unsettled = await q.one("SELECT (SELECT count(*) FROM pending_artifacts WHERE export_id = $1) + (SELECT count(*) FROM runs WHERE export_id = $1 AND result = 'Running') AS n", [exportId]);
      if (Number(unsettled!.n) > 0) {
        throw failedPrecondition(`continuous export '${name}' has a failed attempt not yet cleaned up; reset its cursor after its next run`);
      }
      const from = state.checkpoint_cursor as bigint;
      await q.run("UPDATE export_state SET checkpoint_cursor = $2 WHERE export_id = $1", [exportId, cursor]);
      await insertFailure(q, exportId, new Date(this.now()), state.last_success_time ?? null, {
        operationId: `reset-${ticksFromEpochMs(this.now())}`,
        name,
        failureKind: "CursorReset",
        details: `checkpoint moved from ${cursorText(from)} to ${cursorText(cursor)}${note ? ` ${note}` : ""}; the next run exports what comes after it`,
        isPermanent: false,
      });
      return from;
    });
  }

  /** A failure that belongs to no run (e.g. the export was disabled automatically). */
  async addFailure(exportId: string, failure: Omit<FailureRecord, "timestamp" | "lastSuccessRun">): Promise<void> {
    await this.db.transaction(async (q) => {
      const state = await q.one("SELECT last_success_time FROM export_state WHERE export_id = $1", [exportId]);
      if (state) await insertFailure(q, exportId, new Date(this.now()), state.last_success_time ?? null, failure);
    });
  }

  /** The failures recorded since the export last completed a run, oldest first. */
  async failuresSinceLastSuccess(exportId: string): Promise<FailureRecord[]> {
    const state = (await this.getExportStates([exportId]))[0];
    const since = state?.lastSuccessTime?.getTime() ?? 0;
    // ">=": a failure in the same millisecond as the last success came after it.
    return (await this.listFailures(exportId)).filter((f) => f.timestamp.getTime() >= since);
  }

  /**
   * What a scheduler starting up finds of one that died: Running runs whose export has no
   * live lease, failed, so they show as such and the next runs cover the same records. On
   * DuckDB one process holds the store, so every lease in it is such a leftover and goes first.
   * With `expiredForMs` above 0, a running scheduler's sweep (a node of a shared store may die
   * while the others run on): no lease is released first, and only each export's latest run,
   * if its lease expired at least that long ago (or it was let go, the run started at least
   * that long ago), is failed (the next run of an export fails the run it supersedes itself:
   * failSupersededRun).
   */
  async recoverAbandonedRuns(expiredForMs = 0): Promise<number> {
    // One process holds a DuckDB store: its runs in flight are this process's own.
    if (expiredForMs > 0 && !this.db.shared) return 0;
    if (expiredForMs === 0) await this.releaseAllLeases();
    const why =
      expiredForMs === 0
        ? STOPPED_BEFORE_COMMIT
        : `the node running this export stopped renewing its lease more than ${Math.round(expiredForMs / 1000)} s ago, before the run committed; the next run covers the same records`;
    let recovered = 0;
    for (const run of await this.abandonedRuns(expiredForMs)) if (await this.failAbandonedRun(run, why, expiredForMs)) recovered++;
    return recovered;
  }

  /**
   * Records one run `abandonedRuns` listed as failed, unless what made it look abandoned
   * changed since: it ended (committed, failed, its export dropped), or it is the export's
   * latest run and its lease is live again (renewed late: its owner is alive). The latest
   * run's expired lease is freed with it: an expired lease stays its owner's until taken
   * (commitRun), and a run recorded failed must not commit after. An older run's lease went to
   * a later run when that one opened; it is left to that run. True when it recorded the failure.
   */
  async failAbandonedRun(run: { exportId: string; runId: string; name: string }, details = STOPPED_BEFORE_COMMIT, expiredForMs = 0): Promise<boolean> {
    return this.db.transaction(async (q) => {
      const now = this.now();
      const row = await q.one(
        "SELECT r.result, r.run_number, s.run_count, s.lease_owner, s.lease_expires_at FROM runs r JOIN export_state s USING (export_id) WHERE r.run_id = $1",
        [run.runId],
      );
      if (!row || row.result !== "Running") return false;
      const latest = BigInt(row.run_number as bigint) === BigInt(row.run_count as bigint);
      // A sweep's run renewed late and expired again since it was listed: not that long ago.
      if (latest && leaseOwner(row, now - expiredForMs) !== undefined) return false;
      if (latest) await q.run("UPDATE export_state SET lease_owner = NULL, lease_expires_at = NULL WHERE export_id = $1", [run.exportId]);
      await failIn(q, run.exportId, run.runId, new Date(now), {
        operationId: run.runId,
        name: run.name,
        failureKind: "Failure",
        details,
        isPermanent: false,
      });
      return true;
    });
  }

  /**
   * Before an export is dropped: unless a run holds its lease live (that run removes its own
   * files when its commit finds the export gone), takes the lease for the drop and gives the
   * files failed attempts journaled. Taken, so that a run whose lease expired, which would
   * still commit (commitRun), cannot commit files the drop is about to remove. The hold
   * expires like any lease: a drop that stops part way (storage refused) leaves the export
   * to its runs again, unless the drop lets it go (releaseLease with `owner`) at once.
   */
  async holdForDrop(exportId: string, owner: string): Promise<{ runInFlight: boolean; pending: PendingArtifact[] }> {
    if (!owner) throw invalidArgument("a hold for a drop needs an owner, to let it go by");
    return this.db.transaction(async (q) => {
      if (!(await takeLease(q, exportId, owner, DROP_HOLD_MS, this.now()))) {
        if (await leaseRowOf(q, exportId)) return { runInFlight: true, pending: [] };
        // No state: a drop purged it and stopped before the definition went. What the journal
        // still lists may be a run's in flight, which can no longer tell: left to the sweep.
        return { runInFlight: (await pendingOf(q, exportId)).length > 0, pending: [] };
      }
      return { runInFlight: false, pending: await pendingOf(q, exportId) };
    });
  }

  /**
   * Runs left `Running` by a process that died: a later run of their export opened (which took
   * the lease from them: they can never commit), or their export's lease is gone or expired, at
   * least `expiredForMs` ago. Failed, so they show as such and are retried.
   */
  async abandonedRuns(expiredForMs = 0): Promise<Array<{ exportId: string; runId: string; name: string }>> {
    // One statement that only reads: beside the writes, not behind them (failAbandonedRun checks each again).
    // A sweep reads only each export's latest run, by its lease: not the whole history of runs.
    const rows = await this.db.select(
      expiredForMs > 0
        ? `SELECT r.export_id, r.run_id, s.name FROM export_state s JOIN runs r ON r.export_id = s.export_id AND r.run_number = s.run_count
            WHERE (s.lease_expires_at <= $1 OR (s.lease_owner IS NULL AND r.started_at <= $1)) AND r.result = 'Running'`
        : `SELECT r.export_id, r.run_id, s.name FROM runs r JOIN export_state s USING (export_id)
            WHERE r.result = 'Running' AND (r.run_number < s.run_count OR s.lease_expires_at IS NULL OR s.lease_expires_at <= $1)`,
      [new Date(this.now() - expiredForMs)],
    );
    return rows.map((r) => ({ exportId: String(r.export_id), runId: String(r.run_id), name: String(r.name) }));
  }

  async listArtifacts(exportId: string): Promise<ArtifactRecord[]> {
    return this.db.read(async (q) => {
      const since = new Date(this.now() - HISTORY_RETENTION_MS);
      const rows = await q.all(
        "SELECT * FROM artifacts WHERE export_id = $1 AND committed_at >= $2 ORDER BY committed_at, path",
        [exportId, since],
      );
      return rows.map((r) => ({
        timestamp: dateOf(r.committed_at)!,
        externalTable: String(r.external_table),
        path: String(r.path),
        numRecords: r.num_records as bigint,
        sizeBytes: r.size_bytes as bigint,
      }));
    });
  }

  /**
   * Records a backfill of an export and its operation: every record after `from` up to the
   * export's start cursor. Refused while another backfill of the export is in progress.
   */
  async createBackfill(operationId: string, exportId: string, database: string, name: string, fromArg: bigint | undefined, request: string): Promise<BackfillRecord> {
    return this.db.transaction(async (q) => {
      const state = await q.one("SELECT start_cursor, checkpoint_cursor FROM export_state WHERE export_id = $1", [exportId]);
      if (!state) throw new ExportGoneError(`continuous export '${name}' no longer exists`);
      const running = await backfillInProgress(q, exportId);
      if (running) throw failedPrecondition(`continuous export '${name}' has a backfill in progress (operation ${running}); wait for it or cancel it`);
      // Up to the start, or to the checkpoint if a reset moved it below: the runs export what comes after it.
      const start = state.start_cursor as bigint;
      const checkpoint = state.checkpoint_cursor as bigint;
      const to = checkpoint < start ? checkpoint : start;
      // Without fromCursor, where the last backfill of the export stopped: what it committed is not exported twice.
      const last = (await backfillsOf(q, "b.export_id = $1", [exportId])).at(-1);
      const from = fromArg ?? last?.done ?? 0n;
      if (from >= to) {
        throw fromArg === undefined
          ? failedPrecondition(`continuous export '${name}' has nothing left to backfill: its last backfill (operation ${last!.operationId}) reached ${cursorText(from)}, and the runs export what comes after ${cursorText(to)}`)
          : invalidArgument(`fromCursor ${cursorText(from)} is at or after the export's start cursor ${cursorText(to)}: there is nothing before it to backfill`);
      }
      const now = new Date(this.now());
      await q.run(
        "INSERT INTO operations (operation_id, database, operation, request, state, status, owner, expires_at, cancel_requested, started_at, updated_at, resources, phase) VALUES ($1, $2, 'Backfill', $3, 'InProgress', '', '', NULL, false, $4, $4, '', '')",
        [operationId, database, request, now],
      );
      await q.run("INSERT INTO backfills VALUES ($1, $2, $3, $4, $3, 0, 0, 0, 0, $5)", [operationId, exportId, from, to, now]);
      return (await backfillsOf(q, "b.operation_id = $1", [operationId]))[0]!;
    });
  }

  async backfill(operationId: string): Promise<BackfillRecord | undefined> {
    return this.db.read(async (q) => (await backfillsOf(q, "b.operation_id = $1", [operationId]))[0]);
  }

  /** The latest backfill of each of the exports. */
  async latestBackfills(exportIds: string[]): Promise<BackfillRecord[]> {
    if (exportIds.length === 0) return [];
    return this.db.read(async (q) => {
      const all = await backfillsOf(q, `b.export_id IN (${inList(exportIds)})`, []);
      const latest = new Map<string, BackfillRecord>();
      for (const b of all) latest.set(b.exportId, b);
      return [...latest.values()];
    });
  }

  async setBackfillTotals(operationId: string, recordsTotal: bigint, batchesTotal: bigint): Promise<void> {
    await this.db.exclusive((q) => q.run("UPDATE backfills SET records_total = $2, batches_total = $3 WHERE operation_id = $1", [operationId, recordsTotal, batchesTotal]));
  }

  /**
   * Commits one batch of a backfill, once: its artifacts among the export's, its journal
   * cleared, the backfill moved past it, in one transaction; refused when `owner` lost the
   * operation or the batch does not start where the last one ended.
   */
  async commitBackfillBatch(operationId: string, owner: string, externalTable: string, from: bigint, upTo: bigint, artifacts: Array<{ path: string; numRecords: bigint; sizeBytes: bigint }>, records: bigint, manifest?: DueManifestRecord): Promise<void> {
    await this.db.transaction(async (q) => {
      const row = await q.one("SELECT o.owner, o.state, b.export_id, b.done_cursor FROM operations o JOIN backfills b USING (operation_id) WHERE o.operation_id = $1", [operationId]);
      // The owner, as renewOperation and finishOperation check it: expired is still ours until claimed.
      if (!row || row.state !== "InProgress" || row.owner !== owner) throw new LeaseLostError(`backfill ${operationId} is no longer this scheduler's`);
      if (row.done_cursor !== from) throw new RunRaceError(`backfill ${operationId} is at ${row.done_cursor}, not ${from}: this batch was committed already`);
      const exportId = String(row.export_id);
      const now = new Date(this.now());
      await q.runAll([
        ...artifactInserts(exportId, operationId, externalTable, artifacts, now),
        // Its own journal entries: another attempt's (a scheduler that lost the lease) are that one's to remove.
        ...(artifacts.length ? [[`DELETE FROM pending_artifacts WHERE export_id = $1 AND path IN (${inList(artifacts.map((a) => a.path))})`, [operationId]] satisfies SqlStatement] : []),
        ["UPDATE backfills SET done_cursor = $2, records_done = records_done + $3, batches_done = batches_done + 1 WHERE operation_id = $1", [operationId, upTo, records]],
        ...(manifest ? [dueManifestInsert(manifest, now)] : []),
        ["UPDATE operations SET updated_at = $2 WHERE operation_id = $1", [operationId, now]],
      ]);
    });
  }

  /** Manifests still to write, oldest first. */
  async dueManifests(limit: number): Promise<DueManifestRecord[]> {
    const rows = await this.db.read((q) => q.all("SELECT * FROM due_manifests ORDER BY created_at, key LIMIT $1", [limit]));
    return rows.map((r) => ({ key: String(r.key), database: String(r.database), externalTable: String(r.external_table), name: String(r.name), body: String(r.body) }));
  }

  async forgetManifest(key: string): Promise<void> {
    await this.db.transaction((q) => q.run("DELETE FROM due_manifests WHERE key = $1", [key]));
  }

  /** Records an operation asked for, InProgress and not yet taken. */
  async createOperation(operationId: string, database: string, operation: string, request: string): Promise<void> {
    const now = new Date(this.now());
    await this.db.exclusive((q) =>
      q.run(
        "INSERT INTO operations (operation_id, database, operation, request, state, status, owner, expires_at, cancel_requested, started_at, updated_at, resources, phase) VALUES ($1, $2, $3, $4, 'InProgress', '', '', NULL, false, $5, $5, '', '')",
        [operationId, database, operation, request, now],
      ),
    );
  }

  /**
   * Takes the oldest operation that waits, or one whose owner stopped (its lease expired),
   * under a lease for `owner`; a canceled one that no one ran ends here too. Undefined when
   * none is left. An abandoned one comes with the files it journaled, to remove before it fails.
   * Each claim is numbered, from 1, so a later claim can tell its own txn in a Delta log from
   * an earlier one's (README "A node that died mid-run").
   */
  async claimOperation(owner: string, ttlMs: number): Promise<{ operation: OperationRecord; abandoned: boolean; pending: string[]; claim: bigint; claimedBeforeNumbering: boolean } | undefined> {
    return this.db.transaction(async (q) => {
      const now = new Date(this.now());
      const row = await q.one(
        `SELECT * FROM operations WHERE state = 'InProgress' AND (owner = '' OR expires_at < $1) ORDER BY started_at, operation_id LIMIT 1`,
        [now],
      );
      if (!row) return undefined;
      const operation = operationOf(row);
      const claim = BigInt((row.claims as bigint | null) ?? 0n) + 1n;
      // Owned, yet never claimed with a number: an older Spillway claimed it.
      const claimedBeforeNumbering = Boolean(row.claimed_before_numbering) || (claim === 1n && operation.owner !== "");
      await q.run("UPDATE operations SET owner = $2, expires_at = $3, updated_at = $4, claims = $5, claimed_before_numbering = $6 WHERE operation_id = $1", [
        operation.operationId,
        owner,
        new Date(this.now() + ttlMs),
        now,
        claim,
        claimedBeforeNumbering,
      ]);
      const pending = (await pendingOf(q, operation.operationId)).map((p) => p.path);
      return { operation: { ...operation, owner }, abandoned: operation.owner !== "", pending, claim, claimedBeforeNumbering };
    });
  }

  /** Extends `owner`'s lease on the operation; says whether it still holds it and whether cancel was asked. */
  async renewOperation(operationId: string, owner: string, ttlMs: number, phase = ""): Promise<{ held: boolean; cancelRequested: boolean }> {
    return this.db.transaction(async (q) => {
      const row = await q.one("SELECT owner, state, cancel_requested FROM operations WHERE operation_id = $1", [operationId]);
      if (!row || row.owner !== owner || row.state !== "InProgress") return { held: false, cancelRequested: Boolean(row?.cancel_requested) };
      await q.run("UPDATE operations SET expires_at = $2, updated_at = $3, phase = CASE WHEN $4 = '' THEN phase ELSE $4 END WHERE operation_id = $1", [operationId, new Date(this.now() + ttlMs), new Date(this.now()), phase]);
      return { held: true, cancelRequested: Boolean(row.cancel_requested) };
    });
  }

  /**
   * Ends an operation `owner` holds: Completed with its artifacts (recorded, its journal
   * cleared, in one transaction), or Failed or Canceled. Refused when the lease was lost.
   */
  async finishOperation(operationId: string, owner: string, end: { state: "Completed" | "Failed" | "Canceled"; status: string; externalTable: string; artifacts: Array<{ path: string; numRecords: bigint; sizeBytes: bigint }>; resources: string; manifest?: DueManifestRecord }): Promise<void> {
    await this.db.transaction(async (q) => {
      const row = await q.one("SELECT owner, state FROM operations WHERE operation_id = $1", [operationId]);
      if (!row || row.state !== "InProgress" || row.owner !== owner) throw new LeaseLostError(`operation ${operationId} is no longer this scheduler's to finish`);
      const now = new Date(this.now());
      await q.run("UPDATE operations SET state = $2, status = $3, resources = $4, updated_at = $5, expires_at = NULL WHERE operation_id = $1", [operationId, end.state, end.status, end.resources, now]);
      if (end.state !== "Completed") return;
      if (end.artifacts.length) await q.run(`DELETE FROM pending_artifacts WHERE export_id = $1 AND path IN (${inList(end.artifacts.map((a) => a.path))})`, [operationId]);
      await q.runAll([...(end.manifest ? [dueManifestInsert(end.manifest, now)] : []), ...artifactInserts(operationId, operationId, end.externalTable, end.artifacts, now)]);
    });
  }

  /**
   * Asks an operation to stop. One no scheduler has taken ends Canceled at once; a running
   * one is stopped by its owner, which sees the request when it renews its lease.
   */
  async cancelOperation(operationId: string): Promise<OperationRecord | undefined> {
    return this.db.transaction(async (q) => {
      const row = await q.one("SELECT * FROM operations WHERE operation_id = $1", [operationId]);
      if (!row) return undefined;
      const operation = operationOf(row);
      if (operation.state !== "InProgress") return operation;
      const now = new Date(this.now());
      if (operation.owner === "") {
        await q.run("UPDATE operations SET state = 'Canceled', status = 'canceled before it started', cancel_requested = true, updated_at = $2 WHERE operation_id = $1", [operationId, now]);
      } else {
        await q.run("UPDATE operations SET cancel_requested = true, updated_at = $2 WHERE operation_id = $1", [operationId, now]);
      }
      return operationOf((await q.one("SELECT * FROM operations WHERE operation_id = $1", [operationId]))!);
    });
  }

  /** The database's operations (kept 14 days), or the one asked for, oldest first. */
  async listOperations(database: string, operationId?: string): Promise<OperationRecord[]> {
    return this.db.read(async (q) => {
      const since = new Date(this.now() - HISTORY_RETENTION_MS);
      const rows = operationId
        ? await q.all("SELECT * FROM operations WHERE database = $1 AND operation_id = $2", [database, operationId])
        : await q.all("SELECT * FROM operations WHERE database = $1 AND started_at >= $2 ORDER BY started_at, operation_id", [database, since]);
      return rows.map(operationOf);
    });
  }

  /** Runs of the given exports (every export's when none is given) started at or after `since`, oldest first. */
  async listRuns(exportIds: string[], since?: Date): Promise<RunRecord[]> {
    return this.db.read(async (q) => {
      const kept = new Date(this.now() - HISTORY_RETENTION_MS);
      const from = since && since > kept ? since : kept;
      const which = exportIds.length ? `AND r.export_id IN (${inList(exportIds)})` : "";
      const rows = await q.all(
        `SELECT r.*, s.database, s.name FROM runs r JOIN export_state s USING (export_id) WHERE r.started_at >= $1 ${which} ORDER BY r.started_at, r.run_number`,
        [from],
      );
      return rows.map((r) => ({
        runId: String(r.run_id),
        exportId: String(r.export_id),
        database: String(r.database),
        name: String(r.name),
        runNumber: r.run_number as bigint,
        result: String(r.result),
        from: r.from_cursor as bigint,
        to: r.to_cursor as bigint,
        startedAt: dateOf(r.started_at)!,
        finishedAt: dateOf(r.finished_at),
        details: r.details === null || r.details === undefined ? "" : String(r.details),
        resources: r.resources === null || r.resources === undefined ? "" : String(r.resources),
      }));
    });
  }

  /**
   * Forgets the runs, artifacts and failures older than the retention (14 days); a run still
   * Running is kept whatever its age. Returns how many rows went.
   */
  async pruneHistory(): Promise<number> {
    return this.db.transaction(async (q) => {
      const before = new Date(this.now() - HISTORY_RETENTION_MS);
      let removed = 0;
      for (const [table, column, kept] of [["runs", "started_at", " AND result <> 'Running'"], ["artifacts", "committed_at", ""], ["failures", "failed_at", ""], ["operations", "started_at", " AND state <> 'InProgress'"]]) {
        const where = `WHERE ${column} < $1${kept}`;
        removed += Number((await q.one(`SELECT count(*) AS n FROM ${table} ${where}`, [before]))!.n);
        await q.run(`DELETE FROM ${table} ${where}`, [before]);
      }
      return removed;
    });
  }

  async listFailures(exportId: string): Promise<FailureRecord[]> {
    return this.db.read(async (q) => {
      const rows = await q.all("SELECT * FROM failures WHERE export_id = $1 ORDER BY failed_at", [exportId]);
      return rows.map((r) => ({
        timestamp: dateOf(r.failed_at)!,
        operationId: String(r.operation_id),
        name: String(r.name),
        lastSuccessRun: dateOf(r.last_success_run),
        failureKind: r.failure_kind as FailureRecord["failureKind"],
        details: String(r.details),
        isPermanent: Boolean(r.is_permanent),
      }));
    });
  }
}

/** The lease on an export was lost: the holder must not commit; a later run will. */
export class LeaseLostError extends SpillwayError {
  constructor(message: string) {
    super(ErrorCode.aborted, message);
  }
}

/** The run lost a race with a drop or another run's commit: nothing of it may commit. */
export class RunRaceError extends SpillwayError {
  constructor(message: string) {
    super(ErrorCode.aborted, message);
  }
}

/** The export was dropped (or is being dropped): it must not run. */
export class ExportGoneError extends SpillwayError {
  constructor(message: string) {
    super(ErrorCode.notFound, message);
  }
}

export interface PendingArtifact {
  runId: string;
  path: string;
}

export interface StartedRun {
  runNumber: bigint;
  from: bigint;
  to: bigint;
  /** The run's start as the export's state records it (last_run_start). */
  startedAt: Date;
  /** Runs of the export that committed before this one. */
  completedRuns: bigint;
  /** Files failed attempts journaled and never committed: to delete before this run writes. */
  pending: PendingArtifact[];
}

/**
 * The range a run of the export whose state is `row` (with the clock as `__last_cursor`)
 * opens on, with that row: from the checkpoint up to `upTo(current cursor)`, never below it. Refuses an
 * export without state (being dropped: a run must never bring it back) or one the scheduler
 * disabled.
 */
function openableRange(row: SqlRow | undefined, name: string, upTo: (current: bigint) => bigint): { state: SqlRow; from: bigint; to: bigint } {
  if (!row) throw new ExportGoneError(`continuous export '${name}' no longer exists`);
  if (row.system_disabled) throw failedPrecondition(`continuous export '${name}' was ${String(row.system_disabled)}`);
  const from = row.checkpoint_cursor as bigint;
  const to = upTo(row.__last_cursor as bigint);
  return { state: row, from, to: to < from ? from : to };
}

/** The export's lease columns; undefined when it has no state. */
function leaseRowOf(q: MetadataSession, exportId: string): Promise<SqlRow | undefined> {
  return q.one("SELECT lease_owner, lease_expires_at FROM export_state WHERE export_id = $1", [exportId]);
}

async function takeLease(q: MetadataSession, exportId: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
  const row = await leaseRowOf(q, exportId);
  // An export without state is being dropped: no run may take it.
  if (!row || leasedElsewhere(row, owner, now)) return false;
  await q.run("UPDATE export_state SET lease_owner = $2, lease_expires_at = $3 WHERE export_id = $1", [exportId, owner, new Date(now + ttlMs)]);
  return true;
}

/** Lets go of `owner`'s lease on the export, if it holds it. */
async function releaseIn(q: MetadataSession, exportId: string, owner: string): Promise<void> {
  await q.run("UPDATE export_state SET lease_owner = NULL, lease_expires_at = NULL WHERE export_id = $1 AND lease_owner = $2", [exportId, owner]);
}

/**
 * Who holds the lease of an export_state row (owner and expiry, both null when none), if it
 * has not expired: one that expired may be taken, though its owner may still commit until then.
 */
function leaseOwner(row: SqlRow, now: number): string | undefined {
  const expires = dateOf(row.lease_expires_at);
  return row.lease_owner !== null && row.lease_owner !== undefined && expires !== undefined && expires.getTime() > now ? String(row.lease_owner) : undefined;
}

/** Whether another owner than `owner` holds the row's export under an unexpired lease. */
function leasedElsewhere(row: SqlRow, owner: string, now: number): boolean {
  const holder = leaseOwner(row, now);
  return holder !== undefined && holder !== owner;
}

/** The export's state, created at the current cursor if it has none: it exports what is ingested from now on. */
async function initState(q: MetadataSession, exportId: string, database: string, name: string, now: number): Promise<ExportStateRecord> {
  const existing = await q.one("SELECT * FROM export_state WHERE export_id = $1", [exportId]);
  if (existing) return stateOf(existing, now);
  let start = await lastCursor(q);
  if (start === 0n) {
    // Nothing was ingested yet: the creation time stands for the start, so `cursor_before_or_at(startCursor)`
    // works as the seed's recipe writes it. The clock moves there too: no later extent can get a
    // cursor at or below it, whatever another node's clock says.
    start = ticksFromEpochMs(now);
    await q.run("UPDATE clock SET last_cursor = $1", [start]);
  }
  // The first scheduled run comes one interval after creation: nothing is new before that.
  await q.run(
    `INSERT INTO export_state (export_id, database, name, start_cursor, checkpoint_cursor, run_count, last_run_result, last_run_time, last_run_start, last_success_time, system_disabled, completed_runs)
       VALUES ($1, $2, $3, $4, $4, 0, '', NULL, $5, NULL, '', 0)`,
    [exportId, database, name, start, new Date(now)],
  );
  return stateOf((await q.one("SELECT * FROM export_state WHERE export_id = $1", [exportId]))!, now);
}

/** A new run number, recorded as Running. */
async function openRun(q: MetadataSession, exportId: string, runId: string, from: bigint, to: bigint, now: number, runsSoFar: bigint, lease?: { owner: string; expiresAt: Date }): Promise<bigint> {
  const runNumber = runsSoFar + 1n;
  const at = new Date(now);
  // The lease, when given, is taken in the same write (startRun).
  const leaseSet = lease ? ", lease_owner = $4, lease_expires_at = $5" : "";
  await q.runAll([
    [`UPDATE export_state SET run_count = $2, last_run_start = $3${leaseSet} WHERE export_id = $1`, lease ? [exportId, runNumber, at, lease.owner, lease.expiresAt] : [exportId, runNumber, at]],
    ["INSERT INTO runs (run_id, export_id, run_number, from_cursor, to_cursor, started_at, result) VALUES ($1, $2, $3, $4, $5, $6, 'Running')", [runId, exportId, runNumber, from, to, at]],
  ]);
  return runNumber;
}

/** Drops a table's extents (their files to the query service's collector) and their tags; returns their paths. */
async function dropExtentsOf(q: MetadataSession, database: string, table: string, at: Date): Promise<string[]> {
  const rows = await q.all("SELECT extent_id, path FROM extents WHERE database = $1 AND table_name = $2", [database, table]);
  await q.run("INSERT INTO dropped_extents (extent_id, path, dropped_at) SELECT extent_id, path, $3 FROM extents WHERE database = $1 AND table_name = $2", [database, table, at]);
  await q.run("DELETE FROM extents WHERE database = $1 AND table_name = $2", [database, table]);
  // Dropping the extents drops their tags: the same tag may be ingested again.
  await q.run("DELETE FROM extent_tags WHERE database = $1 AND table_name = $2", [database, table]);
  return rows.map((r) => String(r.path));
}

/** The statements that record committed artifacts, many rows a statement: a bulk run may have hundreds. */
function artifactInserts(exportId: string, runId: string, externalTable: string, artifacts: ReadonlyArray<{ path: string; numRecords: bigint; sizeBytes: bigint }>, at: Date): SqlStatement[] {
  const statements: SqlStatement[] = [];
  for (let i = 0; i < artifacts.length; i += ARTIFACT_ROWS_PER_INSERT) {
    const some = artifacts.slice(i, i + ARTIFACT_ROWS_PER_INSERT);
    const last = 4 + 3 * some.length;
    const rows = some.map((_, j) => `($1, $2, $3, $${4 + 3 * j}, $${5 + 3 * j}, $${6 + 3 * j}, $${last})`).join(", ");
    statements.push([`INSERT INTO artifacts VALUES ${rows}`, [exportId, runId, externalTable, ...some.flatMap((a) => [a.path, a.numRecords, a.sizeBytes]), at]]);
  }
  return statements;
}

function dueManifestInsert(m: DueManifestRecord, at: Date): SqlStatement {
  return ["INSERT INTO due_manifests VALUES ($1, $2, $3, $4, $5, $6)", [m.key, m.database, m.externalTable, m.name, m.body, at]];
}

/** The id of the export's backfill in progress, if one is. */
async function backfillInProgress(q: MetadataSession, exportId: string): Promise<string | undefined> {
  const row = await q.one("SELECT b.operation_id FROM backfills b JOIN operations o USING (operation_id) WHERE b.export_id = $1 AND o.state = 'InProgress'", [exportId]);
  return row ? String(row.operation_id) : undefined;
}

async function backfillsOf(q: MetadataSession, where: string, params: SqlValue[]): Promise<BackfillRecord[]> {
  const rows = await q.all(`SELECT b.*, o.state, o.status FROM backfills b JOIN operations o USING (operation_id) WHERE ${where} ORDER BY b.created_at, b.operation_id`, params);
  return rows.map((r) => ({
    operationId: String(r.operation_id),
    exportId: String(r.export_id),
    state: String(r.state),
    status: String(r.status),
    from: r.from_cursor as bigint,
    to: r.to_cursor as bigint,
    done: r.done_cursor as bigint,
    recordsDone: r.records_done as bigint,
    recordsTotal: r.records_total as bigint,
    batchesDone: r.batches_done as bigint,
    batchesTotal: r.batches_total as bigint,
  }));
}

async function foundTags(q: MetadataSession, database: string, table: string, tags: string[]): Promise<string[]> {
  const rows = await q.all(`SELECT DISTINCT tag FROM extent_tags WHERE database = $1 AND table_name = $2 AND tag IN (${inList(tags)}) ORDER BY tag`, [database, table]);
  return rows.map((r) => String(r.tag));
}

function operationOf(r: SqlRow): OperationRecord {
  return {
    operationId: String(r.operation_id),
    database: String(r.database),
    operation: String(r.operation),
    request: String(r.request),
    state: r.state as OperationRecord["state"],
    status: String(r.status),
    owner: String(r.owner),
    cancelRequested: Boolean(r.cancel_requested),
    phase: r.phase === null || r.phase === undefined ? "" : String(r.phase),
    startedAt: dateOf(r.started_at)!,
    updatedAt: dateOf(r.updated_at)!,
    resources: String(r.resources),
  };
}

async function pendingOf(q: MetadataSession, exportId: string): Promise<PendingArtifact[]> {
  const rows = await q.all("SELECT DISTINCT run_id, path FROM pending_artifacts WHERE export_id = $1 ORDER BY path", [exportId]);
  return rows.map((r) => ({ runId: String(r.run_id), path: String(r.path) }));
}

/**
 * Whether the export's latest run has not ended, as its row says (a run's end, committed or
 * failed, sets last_run_time): read with the state startRun reads, so the common case, the
 * last run over, costs no statement.
 */
function runNotEnded(state: SqlRow): boolean {
  const started = dateOf(state.last_run_start);
  const ended = dateOf(state.last_run_time);
  // In the same millisecond, either may be the later (a run opened in the transaction that
  // failed the one before it): failSupersededRun finds the run still Running or does nothing.
  return started !== undefined && (ended === undefined || ended.getTime() <= started.getTime());
}

/**
 * The export's latest run, `runNumber`, if still Running when startRun opens the next: its
 * commit would be refused (commitRun checks the owner), so it is failed now rather than left
 * Running until a scheduler starts.
 */
async function failSupersededRun(q: MetadataSession, exportId: string, runNumber: bigint, name: string, now: number, why: string): Promise<void> {
  const run = await q.one("SELECT run_id FROM runs WHERE export_id = $1 AND run_number = $2 AND result = 'Running'", [exportId, runNumber]);
  if (!run) return;
  const runId = String(run.run_id);
  await failIn(q, exportId, runId, new Date(now), {
    operationId: runId,
    name,
    failureKind: "Failure",
    details: `${why}, so this run could not commit; the next run covers the same records`,
    isPermanent: false,
  });
}

/**
 * Why the run a new one supersedes never ended, by the lease as the new one found it: taken
 * from another owner or a drop's expired hold, let go (by its own scheduler, whose record of
 * the end failed, or by a starting one or a drop), or still the new run's owner's (an earlier
 * run of the same scheduler whose end was not recorded).
 */
function supersededWhy(state: SqlRow, owner: string): string {
  const held = state.lease_owner;
  if (held === null || held === undefined) return "the export's lease was let go before the run's end was recorded";
  if (held === owner) return "its scheduler started the export's next run without recording how this one ended";
  // A drop's hold (catalog: owner drop/…) that expired before the drop let go.
  if (String(held).startsWith("drop/")) return "a drop of the export held its lease, and its hold expired";
  return "its lease expired unrenewed and another scheduler took the export";
}

/**
 * Records a run failed: on the export (when it still exists), on the run, and in the failures
 * history; only while the run is Running. A fenced run's own failure comes after the one its
 * taker recorded (failSupersededRun), and a run whose commit landed unseen is not to be failed.
 */
async function failIn(q: MetadataSession, exportId: string, runId: string, now: Date, failure: Omit<FailureRecord, "timestamp" | "lastSuccessRun">, resources = ""): Promise<void> {
  const state = await q.one("SELECT last_success_time FROM export_state WHERE export_id = $1", [exportId]);
  if (!state) return;
  if ((await q.change("UPDATE runs SET result = 'Failed', finished_at = $2, details = $3, resources = $4 WHERE run_id = $1 AND result = 'Running'", [runId, now, failure.details, resources])) === 0) return;
  await q.run("UPDATE export_state SET last_run_result = 'Failed', last_run_time = $2 WHERE export_id = $1", [exportId, now]);
  await insertFailure(q, exportId, now, state.last_success_time ?? null, failure);
}

async function insertFailure(q: MetadataSession, exportId: string, at: Date, lastSuccess: unknown, failure: Omit<FailureRecord, "timestamp" | "lastSuccessRun">): Promise<void> {
  await q.run("INSERT INTO failures VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", [
    exportId,
    failure.operationId,
    failure.name,
    at,
    (lastSuccess ?? null) as Date | null,
    failure.failureKind,
    failure.details,
    failure.isPermanent,
  ]);
}

async function lastCursor(q: MetadataSession): Promise<bigint> {
  return (await q.one("SELECT last_cursor FROM clock"))!.last_cursor as bigint;
}

function inList(items: string[]): string {
  return items.length ? items.map(quoteLiteral).join(", ") : "NULL";
}

function extentOf(r: SqlRow): ExtentRecord {
  return {
    database: String(r.database),
    table: String(r.table_name),
    extentId: String(r.extent_id),
    path: String(r.path),
    rowCount: r.row_count as bigint,
    sizeBytes: r.size_bytes as bigint,
    cursor: r.cursor as bigint,
  };
}

/** An export_state row as a record; it is running while a run holds its lease, from the run's start to its commit or failure. */
function stateOf(r: SqlRow, now: number): ExportStateRecord {
  return {
    exportId: String(r.export_id),
    database: String(r.database),
    name: String(r.name),
    startCursor: r.start_cursor as bigint,
    checkpointCursor: r.checkpoint_cursor as bigint,
    runCount: r.run_count as bigint,
    lastRunResult: String(r.last_run_result),
    lastRunTime: dateOf(r.last_run_time),
    lastRunStart: dateOf(r.last_run_start),
    lastSuccessTime: dateOf(r.last_success_time),
    isRunning: leaseOwner(r, now) !== undefined,
    systemDisabled: String(r.system_disabled ?? ""),
    ...(r.__last_cursor === undefined ? {} : { currentCursor: r.__last_cursor as bigint }),
  };
}

/**
 * Journals `paths` for `id` only where `holder` (a table and the condition, on $1 the id and
 * $4 the owner, that `owner` holds what they are for) finds a row, in the insert itself: how
 * many it wrote (none when the owner no longer holds it). Typed where PostgreSQL would
 * otherwise read $1 as text in one place and VARCHAR in another.
 */
function journalWhereHeld(q: MetadataSession, holder: string, id: string, runId: string, now: Date, owner: string, paths: string[]): Promise<number> {
  const rows = paths.map((_, i) => `($${i + 5}::VARCHAR)`).join(", ");
  return q.change(`INSERT INTO pending_artifacts SELECT $1::VARCHAR, $2::VARCHAR, p.path, $3 FROM (VALUES ${rows}) AS p(path), ${holder}`, [id, runId, now, owner, ...paths]);
}
