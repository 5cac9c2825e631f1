import { randomUUID } from "node:crypto";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import { ErrorCode, errorMessage, isPermanent, isRetryable, redactSecrets, SpillwayError } from "@spillway/errors";
import { cursorText, durationMs, minCursor, ticksFromEpochMs } from "@spillway/kusto";
import type { ExportSpec } from "@spillway/proto";
import { withRetry, DEFAULT_RETRY, type RetryOptions } from "@spillway/rpc";
import { deltaHoldEntry, plannedArtifactPaths } from "@spillway/storage";
import { removeJournaledFiles } from "./journaled-files.js";
import type { SchedulerPeers } from "./peer-clients.js";
import type { ArtifactRecord, LedgerExportState, PendingArtifact, RunLedger, StartedRun } from "./run-ledger.js";
import { RunAccount } from "./run-account.js";
import { manifestOf } from "./run-manifest.js";
import type { RunMetrics } from "./run-metrics.js";
import { splitRange, type CursorRange } from "./run-split.js";

/** What a run needs of the other services: the narrow interface the runner's tests fake. */
export interface RunnerPeers {
  catalog: Pick<SchedulerPeers["catalog"], "listExportSpecs">;
  query: Pick<SchedulerPeers["query"], "executeToSpool" | "discardSpool">;
  writer: Pick<SchedulerPeers["writer"], "stageArtifacts" | "uploadArtifacts" | "discardStage" | "deleteArtifacts" | "findDeltaCommit">;
}

export interface RunOutcome {
  runId: string;
  result: "Completed" | "Failed";
  from: bigint;
  to: bigint;
  artifacts: ArtifactRecord[];
  details: string;
  /** The run's start as the ledger records it (the export's last run start), when it says. */
  startedAt?: Date;
}

/** A failure that will not go away by retrying: the definition or the storage must change. */
export class PermanentRunError extends SpillwayError {
  constructor(message: string) {
    super(ErrorCode.failedPrecondition, message);
  }
}

/** The export was dropped, disabled or redefined while a run was under way: that run must not commit. */
export class RunSupersededError extends SpillwayError {
  constructor(message: string) {
    super(ErrorCode.aborted, message);
  }
}

/**
 * A renewal found the run's lease gone: another owner took it (the run was fenced out), or
 * the export was dropped. Its commit would be refused, so the run stops before writing more.
 */
export class LeaseTakenError extends SpillwayError {
  constructor(name: string) {
    super(ErrorCode.aborted, `the lease on export '${name}' was lost during the run (another scheduler took it, or the export was dropped); the run stopped before uploading more`);
  }
}

/** Another scheduler holds the export's lease: this one must not run it now. */
export class LeaseHeldError extends SpillwayError {
  constructor(name: string) {
    super(ErrorCode.aborted, `export '${name}' is being run by another scheduler; try again shortly`);
  }
}

/** The nodes a row-wise run may be split over (nodes sharing PostgreSQL, DESIGN "Scale-out"). */
export interface RunCluster {
  /** This node's id (its part of a split run goes to its own services). */
  nodeId: string;
  /** The nodes alive now, by id, this one among them. */
  liveNodes(): Promise<Array<{ nodeId: string; address: string }>>;
  /** The query and writer services of the node at `address`. */
  peersAt(address: string): Pick<RunnerPeers, "query" | "writer">;
  /** Least bytes of extents a run reads for it to be split: smaller runs stay on one node. */
  minSplitBytes: bigint;
}

/** What the query service answers for a run's spool. */
type Spool = Awaited<ReturnType<RunnerPeers["query"]["executeToSpool"]>>;
type Uploaded = Awaited<ReturnType<RunnerPeers["writer"]["uploadArtifacts"]>>;

/** A run's query started before the run opened, on the range read then. */
interface EarlyQuery {
  range: CursorRange;
  spool: Promise<Spool>;
}

/** What one attempt at a run has done so far, for its failure path and its record. */
interface Attempt {
  /** What it cost so far, phase by phase. */
  account: RunAccount;
  /** Its run number (its manifest is named after it). */
  runNumber: bigint;
  /** What it may have uploaded, once uploads began. */
  uploaded?: string[];
  /** The artifacts its commit was sent with: it may have landed though no answer came back. */
  committing?: string[];
  /** Set when a renewal of its lease found the lease gone (see underLease). */
  lease: { lost: boolean };
  /**
   * When the last statement that checked the lease in the ledger (a fenced journal, a
   * renewal) was asked for, by the runner's clock; an upload asked for more than
   * FENCE_FRESH_MS later renews the lease first (fencedUpload).
   */
  fencedAt?: number;
}

/** One part of a split run: a cursor range, exported by one node's query and writer services. */
interface RunPart {
  index: number;
  range: CursorRange;
  peers: Pick<RunnerPeers, "query" | "writer">;
  /** Names its spool and its stage on that node. */
  handle: string;
}

export interface RunnerOptions {
  /** Counts each run that ends (SPEC §8's result metric, duration, records, bytes). */
  metrics?: Pick<RunMetrics, "recordRun">;
  /** Split row-wise runs over these nodes; absent, every run stays on this node. */
  cluster?: RunCluster;
  now?: () => number;
  /** Identifies this scheduler as the lease owner. */
  ownerId?: string;
  leaseTtlMs?: number;
  retry?: RetryOptions;
  /** Only permanent failures for this long disable the export (SPEC §3: 7 days). */
  autoDisableAfterMs?: number;
  /** A row-wise run's slice: about this many bytes of fact extents, uploaded while the next is queried (see execute); `--run-slice-size`. 0: whole runs. */
  sliceBytes?: bigint;
  log?: (message: string) => void;
}


const SEVEN_DAYS_MS = 7 * 86_400_000;
/** A lease check asked for this recently fences an upload; older, the lease is renewed first (fencedUpload). */
const FENCE_FRESH_MS = 100;
const tracer = trace.getTracer("spillway-cursor");

/**
 * Runs one continuous export: under the export's lease, takes the cursor range, has the
 * query service bind and execute, the writer stage the artifacts, journals their names,
 * uploads them, then commits artifacts and checkpoint atomically. A failure leaves the
 * checkpoint where it was, and the next attempt first deletes what the failed one wrote.
 */
export class ExportRunner {
  private readonly inFlight = new Map<string, Promise<RunOutcome>>();
  /** Spools and stages of finished runs being removed: a run's caller does not wait for that. */
  private readonly cleanups = new Set<Promise<unknown>>();
  private readonly now: () => number;
  readonly ownerId: string;
  private readonly leaseTtlMs: number;
  private readonly retry: RetryOptions;
  /** An upload's: a lost lease (fencedUpload) is not retried, a failed renewal is. */
  private readonly uploadRetry: RetryOptions;
  private readonly autoDisableAfterMs: number;
  private readonly log: (message: string) => void;
  private readonly cluster?: RunCluster;
  private readonly metrics?: Pick<RunMetrics, "recordRun">;
  private readonly sliceBytes: bigint;

  constructor(
    private readonly store: RunLedger,
    private readonly peers: RunnerPeers,
    options: RunnerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.ownerId = options.ownerId ?? randomUUID();
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
    const shouldRetry = this.retry.shouldRetry ?? isRetryable;
    this.uploadRetry = { ...this.retry, shouldRetry: (err) => !(err instanceof LeaseTakenError) && shouldRetry(err) };
    this.autoDisableAfterMs = options.autoDisableAfterMs ?? SEVEN_DAYS_MS;
    this.log = options.log ?? (() => undefined);
    this.cluster = options.cluster;
    this.metrics = options.metrics;
    this.sliceBytes = options.sliceBytes ?? 0n;
  }

  isRunning(exportId: string): boolean {
    return this.inFlight.has(exportId);
  }

  get runningCount(): number {
    return this.inFlight.size;
  }

  /**
   * Runs the export, after any run of it already in flight in this process. `seen` is its
   * state as the scheduler just read it, with the commit log's cursor: the run's query starts
   * on the range it gives instead of one read again (see underLease).
   */
  async run(spec: ExportSpec, seen?: LedgerExportState): Promise<RunOutcome> {
    const previous = this.inFlight.get(spec.id);
    const next = (async () => {
      if (previous) await previous.catch(() => undefined);
      return this.runOnce(spec, previous ? undefined : seen);
    })();
    this.inFlight.set(spec.id, next);
    try {
      return await next;
    } finally {
      if (this.inFlight.get(spec.id) === next) this.inFlight.delete(spec.id);
    }
  }

  /**
   * A run someone asked for (RunContinuousExportNow): when another scheduler holds the
   * export, running it on another node or holding the lease of one that died, this waits for
   * it, up to a lease and a half, rather than refuse at once as a scheduled run does.
   */
  async runAsked(spec: ExportSpec): Promise<RunOutcome> {
    const deadline = this.now() + this.leaseTtlMs * 1.5;
    for (;;) {
      try {
        return await this.run(spec);
      } catch (err) {
        if (!(err instanceof LeaseHeldError) || this.now() >= deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Waits until no run is in flight (on shutdown). */
  async drain(): Promise<void> {
    while (this.inFlight.size || this.cleanups.size) await Promise.allSettled([...this.inFlight.values(), ...this.cleanups]);
  }

  private runOnce(spec: ExportSpec, seen?: LedgerExportState): Promise<RunOutcome> {
    return tracer.startActiveSpan("continuous_export.run", async (span) => {
      span.setAttributes({ "spillway.database": spec.database, "spillway.export": spec.name, "spillway.export_id": spec.id });
      const t0 = performance.now();
      try {
        const outcome = await this.underLease(spec, seen);
        this.metrics?.recordRun(spec, outcome, (performance.now() - t0) / 1000);
        span.setAttributes({ "spillway.run_id": outcome.runId, "spillway.result": outcome.result, "spillway.artifacts": outcome.artifacts.length });
        if (outcome.result === "Failed") span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.details });
        return outcome;
      } finally {
        span.end();
      }
    });
  }

  private async underLease(spec: ExportSpec, seen?: LedgerExportState): Promise<RunOutcome> {
    const runId = randomUUID();
    const latency = durationMs(spec.forcedLatency);
    const account = new RunAccount();
    // forcedLatency: leave extents committed less than that long ago for a later run.
    const maxCursor = latency > 0 ? ticksFromEpochMs(this.now() - latency) : undefined;
    // The range as it stands now: the run's query starts on it while the run is opened with
    // the same upper end, rather than after (bench #3). The opened run's range is the one that
    // counts: should the checkpoint have moved in between, the query runs again on it. No early
    // query when another owner holds the export (the run would not open), nor when the range
    // cannot be read (startRun says why, or the cursor service predates GetRunRange). A
    // scheduled run takes the range from the state its scheduler just read, clock included: a
    // read fewer before the query (bench #6).
    const planned = !this.queriesEarly(spec)
      ? undefined
      : seen?.currentCursor !== undefined
        ? rangeAsSeen(seen, seen.currentCursor, maxCursor)
        : await account.phase("range", () => this.store.runRange(spec.id, spec.name, this.ownerId, maxCursor)).catch(() => undefined);
    const upTo = planned && !planned.leasedElsewhere ? planned.to : undefined;
    const opening = account.phase("start", () =>
      this.store.startRun({ exportId: spec.id, name: spec.name, runId, owner: this.ownerId, leaseTtlMs: this.leaseTtlMs, maxCursor: upTo !== undefined && (maxCursor === undefined || upTo < maxCursor) ? upTo : maxCursor }),
    );
    const early = planned && upTo !== undefined ? { range: { after: planned.from, upTo }, spool: this.querySpool(spec, { after: planned.from, upTo }, runId, account) } : undefined;
    // Awaited by the run, or let go of: its failure must not go unhandled meanwhile.
    early?.spool.catch(() => undefined);
    let started: StartedRun | undefined;
    try {
      started = await opening;
      if (!started) throw new LeaseHeldError(spec.name);
    } catch (err) {
      if (early) this.afterRun(early.spool, [{ peers: this.peers, handle: runId }]);
      throw err;
    }
    // A renewal that fails says nothing (the next one may pass); one answered false says the
    // lease is gone for good: an expired lease stays ours until another owner takes it.
    const lease = { lost: false };
    const heartbeat = setInterval(() => {
      void this.store.renewLease(spec.id, this.ownerId, this.leaseTtlMs).then((held) => {
        if (!held) lease.lost = true;
      }, () => undefined);
    }, Math.max(100, this.leaseTtlMs / 3));
    let leaseReleased = false;
    try {
      // The run's commit or failure record releases the lease in its own transaction.
      const outcome = await this.execute(spec, runId, started, { account, runNumber: started.runNumber, lease }, early);
      leaseReleased = true;
      return { ...outcome, startedAt: started.startedAt };
    } finally {
      clearInterval(heartbeat);
      if (!leaseReleased) await this.store.releaseLease(spec.id, this.ownerId).catch(() => undefined);
    }
  }

  /**
   * Whether a run's query may start before the run is open: when the run stays whole on this
   * node (see partsOf) and its definition can run at all (execute fails it otherwise).
   */
  private queriesEarly(spec: ExportSpec): boolean {
    if (!spec.externalTable || this.maySplit(spec)) return false;
    try {
      this.checkTables(spec);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The query service spools the run's rows over `range` (the fact tables bound to it, the
   * dimensions whole): the range's first slice when the run may be sliced (see execute), the
   * whole range otherwise.
   */
  private querySpool(spec: ExportSpec, range: CursorRange, handle: string, account: RunAccount): Promise<Spool> {
    const slice = this.maySlice(spec) ? this.sliceBytes : 0n;
    return account.phase("query", () => withRetry(() => this.peers.query.executeToSpool({ ...spoolRequest(spec, range, handle), maxFactBytes: slice }), this.retry));
  }

  /**
   * Whether a run of `spec` may be queried in slices (`--run-slice-size`): row-wise, as a split
   * run; not a Delta table (one log commit per run, staged with its files); not distributed=false
   * (its user asked for the fewest files); and no dimension table, which each slice's query would
   * read as it then is, so one run could join its records with two versions of it.
   */
  private maySlice(spec: ExportSpec): boolean {
    return this.sliceBytes > 0n && spec.rowWise && spec.externalTable?.kind !== "delta" && spec.properties?.distributed !== false && spec.dimensionTables.length === 0;
  }

  /**
   * Removes a run's spools and stages, named by handles no other run has, once `before` (a
   * query still under way) has settled: the run's caller does not wait for that.
   */
  private afterRun(before: Promise<unknown> | undefined, places: Array<{ peers: Pick<RunnerPeers, "query" | "writer">; handle: string }>): void {
    const cleanup = Promise.resolve(before)
      .catch(() => undefined)
      .then(() => Promise.allSettled(places.flatMap((p) => [p.peers.writer.discardStage({ stageId: p.handle }), p.peers.query.discardSpool({ spoolName: p.handle })])));
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
  }

  /** Runs the opened run; `early` is its query started on the range read before it opened (see underLease). */
  private async execute(spec: ExportSpec, runId: string, started: StartedRun, attempt: Attempt, early?: EarlyQuery): Promise<RunOutcome> {
    const { from, to, runNumber } = started;
    const { account } = attempt;
    // Where the run's spools and stages are, each named by its handle: the run's id, or a part's.
    let places: Array<{ peers: Pick<RunnerPeers, "query" | "writer">; handle: string }> = [{ peers: this.peers, handle: runId }];
    try {
      const externalTable = spec.externalTable;
      if (!externalTable) throw new PermanentRunError(`the external table of export '${spec.name}' no longer exists`);
      this.checkTables(spec);
      // Files failed attempts journaled: only the export's lease holder deletes them, as it starts a
      // run; a Delta table's once the txn they were for is held, by this run's log commit or its
      // hold, and the ledger has the commit it adopted (see removeSupersededDeltaFiles).
      const delta = externalTable.kind === "delta";
      if (started.pending.length && !delta) await account.phase("clean-up", () => this.deletePending(spec.id, externalTable, started.pending));

      const fits = early !== undefined && early.range.after === from && early.range.upTo === to;
      // The checkpoint moved before the run opened: the query runs again on the run's range,
      // under a spool name of its own, not waiting for the early one (removed once it ends).
      const spoolName = early && !fits ? `${runId}-again` : runId;
      if (spoolName !== runId) places.push({ peers: this.peers, handle: spoolName });
      // Its work was done for this run all the same: the run's record counts it if it ended by
      // the time the record is written (the run does not wait for it).
      if (early && !fits) void early.spool.then((s) => account.add(s.usage), () => undefined);
      const parts = early ? [] : await this.partsOf(spec, runId, from, to);
      if (parts.length > 1) {
        places = parts;
        return await this.executeParts(spec, runId, started, parts, attempt);
      }

      // The query service binds the fact tables to this run's range and the dimensions whole. A
      // row-wise run's query reads a slice of it (querySpool): each slice is staged, journaled and
      // uploading while the next is queried, and one commit takes them all. Slices upload one
      // after another, so a run has one upload's blocks in flight however many slices it has.
      let spool = await (fits ? early.spool : this.querySpool(spec, { after: from, upTo: to }, spoolName, account));
      const uploads: Array<Promise<Uploaded>> = [];
      let uploadFailed = false;
      try {
        for (let slice = 0; ; slice++) {
          account.add(spool.usage);
          account.read(spool.oldestFactCursor);
          const stageId = slice ? `${runId}-s${slice}` : runId;
          if (spool.rowCount > 0n) {
            assertLeaseHeld(spec, attempt);
            const sliced = spool;
            const nameStem = `${spec.id.slice(0, 8)}_${runNumber}_${runId.slice(0, 8)}${slice ? `_s${slice}` : ""}`;
            const staging = account.phase("stage", () => withRetry(() => this.peers.writer.stageArtifacts({ ...stageRequest(spec, started, stageId, sliced), nameStem }), this.retry));
            // Where the files' names are known before they are staged (an unpartitioned table's
            // encoded files, named as the writer names them: libs/storage plannedArtifactPaths),
            // they are journaled beside the staging instead of after it (bench #3). A name
            // journaled for a file that is not staged is removed with the rest (removing it is
            // a no-op). Both settle before anything is uploaded.
            const planned = plannedArtifactPaths(externalTable, nameStem, sliced.encodedFiles.length);
            const journaling = planned ? account.phase("journal", () => this.journalBeforeUpload(spec, runId, planned, attempt)) : Promise.resolve();
            await settled<unknown>([staging, journaling]);
            const staged = await staging;
            account.add(staged.usage);
            // The Delta log has this run already (a Delta run is never sliced).
            if (staged.alreadyCommitted) return await this.commitAsLogged(spec, runId, started, staged, attempt);
            const paths = staged.artifacts.map((a) => a.path);
            // What the plan did not name (none, unless the writer names otherwise) is journaled now.
            const plannedSet = new Set(planned);
            const unplanned = paths.filter((p) => !plannedSet.has(p));
            if (unplanned.length) await account.phase("journal", () => this.journalBeforeUpload(spec, runId, unplanned, attempt));
            attempt.uploaded = [...(attempt.uploaded ?? []), ...paths];
            const upload = (uploads.at(-1) ?? Promise.resolve()).then(() => account.phase("upload", () => withRetry(() => this.fencedUpload(spec, attempt, this.peers, stageId), this.uploadRetry)));
            // Awaited below, or settled before the run fails: its failure must not go unhandled meanwhile.
            upload.catch(() => (uploadFailed = true));
            uploads.push(upload);
          }
          // A failed upload fails the run: no slice more is queried for it.
          if (!spool.coveredToCursor || uploadFailed) break;
          const next = `${runId}-s${slice + 1}`;
          places.push({ peers: this.peers, handle: next });
          spool = await this.querySpool(spec, { after: BigInt(spool.coveredToCursor), upTo: to }, next, account);
        }
      } catch (err) {
        // No upload of a failed run may land after its files are deleted.
        await Promise.allSettled(uploads);
        throw err;
      }
      if (!uploads.length) {
        // An earlier attempt that journaled files may have committed this run's txn to the log,
        // with records this run's range no longer reaches (forcedLatency on a node whose clock
        // is behind), or may still (paused between its upload and its log commit). The txn is
        // taken for this run's range by an empty commit, unless such a commit holds it, and the
        // run is whichever commit holds it: after it, no attempt can commit the txn, and its
        // files can go; a retry of this run finds its range as the txn's commit. The journal
        // keeps the files a log commit holds until the ledger records them (deletePending), so
        // an empty journal says no attempt left such a commit.
        if (delta && started.pending.length) {
          const txnVersion = started.completedRuns + 1n;
          // Journaled first, as files are (and so only while this run holds the lease): until the
          // ledger records the run, the hold keeps a cursor reset out by itself, whoever removes
          // the earlier attempts' entries.
          await this.journalBeforeUpload(spec, runId, [deltaHoldEntry(spec.id, txnVersion)], attempt);
          // Each try under a lease checked a moment before, as an upload's.
          const held = await withRetry(async () => (await this.leaseFresh(spec, attempt), this.peers.writer.findDeltaCommit({ externalTable, appId: spec.id, txnVersion, holdFromCursor: from.toString(), holdToCursor: to.toString() })), this.retry);
          if (!held.committed) throw new SpillwayError(ErrorCode.unavailable, `txn ${spec.id} version ${txnVersion} of the Delta log could not be taken for the run's range; the next run tries again`);
          return await this.commitAsLogged(spec, runId, started, { artifacts: held.artifacts, committedToCursor: held.toCursor }, attempt);
        }
        return await this.commit(spec, runId, from, to, [], attempt);
      }
      const uploaded = await settled(uploads);
      for (const u of uploaded) account.add(u.usage);
      await account.phase("check", () => this.assertStillWanted(spec));
      if (delta) await this.removeSupersededDeltaFiles(spec, externalTable, started.pending, account);
      return await this.commit(spec, runId, from, to, uploaded.flatMap((u) => u.artifacts.map((a) => this.artifactRecord(externalTable.name, a))), attempt);
    } catch (err) {
      return await this.fail(spec, runId, from, to, err, attempt);
    } finally {
      // An early query the run did not wait for (it failed first) is let finish before its spool goes.
      this.afterRun(early?.spool, places);
    }
  }

  /**
   * Journals the files a run is about to upload: whatever happens from here, the next attempt
   * knows what to delete. The check that the export is still wanted asks another service
   * meanwhile: neither waits on the other. Both settle before going on, so a journal entry
   * never lands after the run was failed. A run that lost its lease uploads nothing: the
   * journal is written only while this scheduler holds it, whatever the renewals said so far.
   */
  private async journalBeforeUpload(spec: ExportSpec, runId: string, paths: string[], attempt: Attempt): Promise<void> {
    assertLeaseHeld(spec, attempt);
    const asked = this.now();
    for (const step of await Promise.allSettled([this.store.journalPending(spec.id, runId, paths, this.ownerId), this.assertStillWanted(spec)])) {
      if (step.status === "rejected") throw step.reason;
    }
    attempt.fencedAt = asked;
  }

  /**
   * Uploads a stage, fenced: the journal's lease check fences the upload right after it
   * (README "A node paused mid-run"); one asked for later (a stage that outlasted a journal
   * written beside it, a slice queued behind the upload before it, a retry after a backoff,
   * a node paused meanwhile) renews the lease first, which answers false once another owner
   * has it. A run that knows its lease is gone uploads nothing.
   */
  private async fencedUpload(spec: ExportSpec, attempt: Attempt, peers: Pick<RunnerPeers, "writer">, stageId: string): Promise<Uploaded> {
    await this.leaseFresh(spec, attempt);
    return peers.writer.uploadArtifacts({ stageId });
  }

  /** Throws unless the lease was checked in the ledger a moment ago, or is now (see fencedUpload). */
  private async leaseFresh(spec: ExportSpec, attempt: Attempt): Promise<void> {
    assertLeaseHeld(spec, attempt);
    const asked = this.now();
    if (attempt.fencedAt === undefined || asked - attempt.fencedAt > FENCE_FRESH_MS) {
      if (!(await this.store.renewLease(spec.id, this.ownerId, this.leaseTtlMs))) {
        attempt.lease.lost = true;
        throw new LeaseTakenError(spec.name);
      }
      attempt.fencedAt = asked;
    }
  }

  /**
   * The parts a run is split into: one per live node, by cursor range, when the export is
   * row-wise (libs/duck isRowWise), may be distributed, is not a Delta table (one log commit
   * per run), and reads at least minSplitBytes; none otherwise (the run stays whole here).
   */
  private async partsOf(spec: ExportSpec, runId: string, from: bigint, to: bigint): Promise<RunPart[]> {
    const cluster = this.cluster;
    if (!cluster || !this.maySplit(spec)) return [];
    // Without the node list, the run is not lost: it stays whole on this node.
    const nodes = await cluster.liveNodes().catch(() => []);
    if (nodes.length < 2) return [];
    const { extents } = await this.store.listExtents(spec.database, spec.factTables, from, to);
    if (extents.reduce((sum, e) => sum + e.sizeBytes, 0n) < cluster.minSplitBytes) return [];
    // This node takes the first part, the others follow in id order from it.
    const self = Math.max(0, nodes.findIndex((n) => n.nodeId === cluster.nodeId));
    const ordered = [...nodes.slice(self), ...nodes.slice(0, self)];
    return splitRange(from, to, extents, ordered.length).map((range, index) => ({
      index,
      range,
      peers: ordered[index]!.nodeId === cluster.nodeId ? this.peers : cluster.peersAt(ordered[index]!.address),
      handle: `${runId}-p${index}`,
    }));
  }

  /**
   * A run split over nodes: each part's node runs the query over its range and stages its
   * artifacts; all their names are journaled; each uploads its own; one commit takes every
   * part's artifacts, or none does (a part that fails fails the run, and what any part
   * uploaded is deleted). Parts are always waited for to the end, so no upload of a failed
   * run lands after its files were deleted. Their spools and stages are discarded by `execute`.
   */
  private async executeParts(spec: ExportSpec, runId: string, started: StartedRun, parts: RunPart[], attempt: Attempt): Promise<RunOutcome> {
    const externalTable = spec.externalTable!;
    const { from, to } = started;
    const { account } = attempt;
    account.parts = parts.length;
    const staged = await account.phase("query and stage", () => settled(parts.map((part) => this.stagePart(spec, started, runId, part, account))));
    const withRows = staged.filter((s) => s.artifacts.length > 0);
    const paths = withRows.flatMap((s) => s.artifacts.map((a) => a.path));
    if (paths.length === 0) return await this.commit(spec, runId, from, to, [], attempt);
    await account.phase("journal", () => this.journalBeforeUpload(spec, runId, paths, attempt));
    attempt.uploaded = paths;
    const uploaded = await account.phase("upload", () =>
      settled(
        withRows.map(async (s) => {
          const done = await withRetry(() => this.fencedUpload(spec, attempt, s.part.peers, s.part.handle), this.uploadRetry);
          account.add(done.usage);
          return done;
        }),
      ),
    );
    await account.phase("check", () => this.assertStillWanted(spec));
    return await this.commit(spec, runId, from, to, uploaded.flatMap((u) => u.artifacts.map((a) => this.artifactRecord(externalTable.name, a))), attempt);
  }

  /** Whether a run of `spec` may be split over nodes: row-wise, distributable, not a Delta table, in a cluster. */
  private maySplit(spec: ExportSpec): boolean {
    return this.cluster !== undefined && spec.rowWise && spec.properties?.distributed !== false && spec.externalTable?.kind !== "delta";
  }

  /** One part of a split run: its node's query service runs the query over the part's range, its writer stages the result. */
  private async stagePart(spec: ExportSpec, started: StartedRun, runId: string, part: RunPart, account: RunAccount) {
    const spool = await withRetry(() => part.peers.query.executeToSpool(spoolRequest(spec, part.range, part.handle)), this.retry);
    account.add(spool.usage);
    account.read(spool.oldestFactCursor);
    if (spool.rowCount === 0n) return { part, artifacts: [] };
    const stage = await withRetry(
      () =>
        part.peers.writer.stageArtifacts({
          ...stageRequest(spec, started, part.handle, spool),
          nameStem: `${spec.id.slice(0, 8)}_${started.runNumber}_${runId.slice(0, 8)}_p${part.index}`,
        }),
      this.retry,
    );
    account.add(stage.usage);
    return { part, artifacts: stage.artifacts };
  }

  /**
   * Commits a Delta run as the table's log has it already (an earlier attempt's commit of its
   * txn): its files, and the range that commit covered. The journaled files the log does not
   * have go (the writer keeps those it has).
   */
  private async commitAsLogged(spec: ExportSpec, runId: string, started: StartedRun, logged: { artifacts: Array<{ path: string; numRecords: bigint; sizeInBytes: bigint; md5?: string }>; committedToCursor: string }, attempt: Attempt): Promise<RunOutcome> {
    const externalTable = spec.externalTable!;
    const committedTo = logged.committedToCursor ? BigInt(logged.committedToCursor) : started.to;
    const outcome = await this.commit(spec, runId, started.from, committedTo, logged.artifacts.map((a) => this.artifactRecord(externalTable.name, a)), attempt);
    // After the ledger has the commit: until then the journal keeps a cursor reset from passing
    // under a log commit the ledger does not know (a hold has no file of its own to keep).
    await this.removeSupersededDeltaFiles(spec, externalTable, started.pending, attempt.account);
    return outcome;
  }

  private artifactRecord(externalTable: string, a: { path: string; numRecords: bigint; sizeInBytes: bigint; md5?: string }): ArtifactRecord {
    return { timestamp: new Date(this.now()), externalTable, path: a.path, numRecords: a.numRecords, sizeBytes: a.sizeInBytes, ...(a.md5 ? { md5: a.md5 } : {}) };
  }

  private checkTables(spec: ExportSpec): void {
    const known = new Map(spec.tables.map((t) => [t.name, t]));
    for (const name of [...spec.factTables, ...spec.dimensionTables]) {
      if (!known.has(name)) throw new PermanentRunError(`table '${name}' used by export '${spec.name}' no longer exists`);
    }
    for (const name of spec.factTables) {
      if (!known.get(name)!.ingestionTimePolicy) {
        throw new PermanentRunError(`fact table '${name}' has its IngestionTime policy off; a fact table needs it`);
      }
    }
  }

  /**
   * The files earlier attempts of a Delta run journaled, removed once this run's log commit
   * holds the txn they were for (every attempt since the last commit was for that one): from
   * then on no such attempt can commit them, though one paused between its upload and its log
   * commit resumes (its commit finds the txn taken, and it removes its files itself). Removed
   * before that, its commit could make files the table's that were already gone. A run with
   * nothing to export takes the txn with an empty commit first (execute). What cannot be
   * removed now is left to the next run, still journaled: the run is not failed for it. Files
   * the log has stay, journaled until the ledger records them (the writer's delete keeps them).
   */
  private async removeSupersededDeltaFiles(spec: ExportSpec, externalTable: NonNullable<ExportSpec["externalTable"]>, pending: PendingArtifact[], account: RunAccount): Promise<void> {
    if (!pending.length) return;
    try {
      await account.phase("clean-up", () => this.deletePending(spec.id, externalTable, pending));
    } catch (err) {
      this.leftForNextRun(spec, err);
    }
  }

  private leftForNextRun(spec: ExportSpec, err: unknown): void {
    this.log(`scheduler: export '${spec.name}': files of earlier attempts could not be removed yet (${redactSecrets(errorMessage(err))}); the next run removes them`);
  }

  private async deletePending(exportId: string, externalTable: ExportSpec["externalTable"], pending: PendingArtifact[]): Promise<void> {
    if (pending.length === 0 || !externalTable) return;
    const paths = [...new Set(pending.map((p) => p.path))];
    await this.store.clearPending(exportId, await removeJournaledFiles(this.peers.writer, externalTable, paths, this.retry));
  }

  /** A run of an export that was dropped, disabled or redefined meanwhile must not commit. */
  private async assertStillWanted(spec: ExportSpec): Promise<void> {
    const { specs } = await withRetry(() => this.peers.catalog.listExportSpecs({ database: spec.database, name: spec.name }), this.retry);
    const current = specs[0];
    if (!current || current.id !== spec.id) throw new RunSupersededError(`export '${spec.name}' was dropped during the run; nothing was committed`);
    if (current.isDisabled) throw new RunSupersededError(`export '${spec.name}' was disabled during the run; nothing was committed`);
    if (current.query !== spec.query) throw new RunSupersededError(`export '${spec.name}' was altered during the run; nothing was committed`);
  }

  private async commit(spec: ExportSpec, runId: string, from: bigint, to: bigint, artifacts: ArtifactRecord[], attempt: Attempt): Promise<RunOutcome> {
    attempt.committing = artifacts.map((a) => a.path);
    // A run that read records has a manifest even when its query kept none, so the manifests
    // cover every range that held records; a run over nothing new has none (runs come every interval).
    const manifest = !artifacts.length && !attempt.account.readFactRecords ? undefined : manifestOf(spec, { key: runId, kind: "ContinuousExportRun", name: `${spec.name}/${attempt.runNumber}-${runId}`, exportName: spec.name, runNumber: attempt.runNumber, from, to }, artifacts);
    const committed = await this.store.commitRun(spec.id, runId, spec.externalTable?.name ?? "", from, to, artifacts, this.ownerId, attempt.account.resources(artifacts), manifest);
    return { runId, result: "Completed", from, to, artifacts: committed, details: "" };
  }

  private async fail(spec: ExportSpec, runId: string, from: bigint, to: bigint, err: unknown, attempt: Attempt): Promise<RunOutcome> {
    let cleanup = "";
    const uploaded = attempt.uploaded;
    const uploadStarted = uploaded !== undefined;
    if (uploaded) {
      // A commit that was sent may have landed though its answer did not come back: the ledger says.
      const landed = attempt.committing ? await this.committedOf(spec.id, attempt.committing) : [];
      if (landed === undefined) {
        cleanup = "; whether its commit landed could not be read, so its files were left as they are";
      } else if (landed.length) {
        return { runId, result: "Completed", from, to, artifacts: landed, details: "" };
      } else {
        cleanup = await this.removeOwnFiles(spec, runId, uploaded);
      }
    }
    const details = redactSecrets(errorMessage(err) + cleanup);
    const permanent = isPermanent(err);
    await this.store.failRun(spec.id, runId, {
      operationId: runId,
      name: spec.name,
      failureKind: uploadStarted ? "PartialFailure" : "Failure",
      details,
      isPermanent: permanent,
    }, this.ownerId, attempt.account.resources([]));
    if (permanent) await this.disableIfFailingTooLong(spec);
    return { runId, result: "Failed", from, to, artifacts: [], details };
  }

  /** Of `paths`, the artifacts the ledger has committed for the export; undefined when it cannot be read. */
  private async committedOf(exportId: string, paths: string[]): Promise<ArtifactRecord[] | undefined> {
    const ours = new Set(paths);
    try {
      return (await withRetry(() => this.store.committedArtifacts(exportId), this.retry)).filter((a) => ours.has(a.path));
    } catch {
      return undefined;
    }
  }

  /**
   * Deletes the files this attempt uploaded, which never became artifacts: by name (they carry
   * the run id, so they are no other run's), since the journal may no longer list them when
   * another owner took the export meanwhile and cleared it (a node paused past its lease, then
   * resumed: the fencing case). Only this attempt's: the journal's other entries may be the
   * new owner's run in flight. What cannot be deleted now is journaled again for the next run.
   */
  private async removeOwnFiles(spec: ExportSpec, runId: string, paths: string[]): Promise<string> {
    try {
      await this.deletePending(spec.id, spec.externalTable, paths.map((path) => ({ runId, path })));
      return "; the files it had written were removed";
    } catch (cleanupErr) {
      await this.store.journalPending(spec.id, runId, paths).catch(() => undefined);
      return `; the files it had written will be removed before the next run (${errorMessage(cleanupErr)})`;
    }
  }

  /** SPEC §3: an export that has only failed permanently for 7 days is disabled. */
  private async disableIfFailingTooLong(spec: ExportSpec): Promise<void> {
    const failures = await this.store.failuresSinceLastSuccess(spec.id);
    if (failures.length === 0 || !failures.every((f) => f.isPermanent)) return;
    if (this.now() - failures[0]!.timestamp.getTime() < this.autoDisableAfterMs) return;
    const details = `disabled automatically: only permanent failures since ${failures[0]!.timestamp.toISOString()} (last: ${failures.at(-1)!.details}); fix the cause and enable the export to resume from its checkpoint`;
    // In the ledger, not through the catalog's public RPC: the definition stays the user's.
    await this.store.setSystemDisabled(spec.id, details);
    this.log(`scheduler: disabled export '${spec.name}' of database '${spec.database}': only permanent failures for ${this.autoDisableAfterMs / 86_400_000} days`);
    await this.store.addFailure(spec.id, { operationId: randomUUID(), name: spec.name, failureKind: "Failure", details, isPermanent: true });
  }
}

/** Waits for every task, then fails with the first failure: nothing is left running behind a failed run. */
async function settled<T>(tasks: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** What a run's query yields: the external table's columns, then its virtual partition columns. */
function exportedColumns(table: NonNullable<ExportSpec["externalTable"]>) {
  return [...table.columns, ...table.partitions.filter((p) => !p.column).map((p) => ({ name: p.name, type: p.type }))];
}

/** What the query service is asked for one run's (or part's) range: the query, its tables, where to spool. */
export function spoolRequest(spec: ExportSpec, range: CursorRange, spoolName: string) {
  const externalTable = spec.externalTable!;
  return {
    database: spec.database,
    query: spec.query,
    tables: spec.tables,
    factTables: spec.factTables.map((table) => ({ table, afterCursor: cursorText(range.after), upToCursor: range.upTo.toString() })),
    dimensionTables: spec.dimensionTables,
    outputColumns: exportedColumns(externalTable),
    spoolName,
    // Where no partition needs a spool of rows, the query service encodes the artifacts' content in one pass.
    encoding: { externalTable, sizeLimit: spec.properties?.sizeLimit ?? 0n, parquetRowGroupSize: spec.properties?.parquetRowGroupSize ?? 0 },
  };
}

/** What the writer is asked to stage a spool as: the target, its files' size, the Delta transaction it would commit. */
export function stageRequest(spec: ExportSpec, started: Pick<StartedRun, "completedRuns" | "from" | "to">, stageId: string, spool: { spoolHandle: string; encodedFiles: string[]; rowCount: bigint }) {
  return {
    stageId,
    externalTable: spec.externalTable!,
    spoolHandle: spool.spoolHandle,
    encodedFiles: spool.encodedFiles,
    spoolRows: spool.rowCount,
    sizeLimit: spec.properties?.sizeLimit ?? 0n,
    parquetRowGroupSize: spec.properties?.parquetRowGroupSize ?? 0,
    distributed: spec.properties?.distributed ?? true,
    // Delta commits carry txn {appId: export id, version: run number}; a retry of a run
    // has the same number, so a commit that landed before a crash is not made twice.
    deltaAppId: spec.id,
    deltaTxnVersion: started.completedRuns + 1n,
    fromCursor: started.from.toString(),
    toCursor: started.to.toString(),
  };
}

/**
 * The range a run would take given the export's state and the commit log's cursor as read
 * together: after the checkpoint, up to that cursor or `maxCursor` (forcedLatency) when it is
 * lower, never below the checkpoint; as the cursor store's startRun computes it.
 */
function rangeAsSeen(seen: LedgerExportState, current: bigint, maxCursor?: bigint): { from: bigint; to: bigint; leasedElsewhere: boolean } {
  const from = seen.checkpointCursor;
  const upTo = maxCursor === undefined ? current : minCursor(current, maxCursor);
  return { from, to: upTo < from ? from : upTo, leasedElsewhere: seen.isRunning };
}

/** A run whose lease renewal found the lease gone stops here: its commit would be refused. */
function assertLeaseHeld(spec: ExportSpec, attempt: Attempt): void {
  if (attempt.lease.lost) throw new LeaseTakenError(spec.name);
}
