import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ErrorCode, errorMessage, isPermanent, isRetryable, redactSecrets, SpillwayError } from "@spillway/errors";
import { RunResourcesSchema, type ExportSpec } from "@spillway/proto";
import { cursorText } from "@spillway/kusto";
import { DEFAULT_RETRY, withRetry, type RetryOptions } from "@spillway/rpc";
import { spoolRequest, stageRequest } from "./export-runner.js";
import { removeJournaledFiles } from "./journaled-files.js";
import type { SchedulerPeers } from "./peer-clients.js";
import { RunAccount } from "./run-account.js";
import { manifestOf, type ManifestToWrite } from "./run-manifest.js";

/** What running one-shot operations needs of the other services: the narrow interface its tests fake. */
export interface OperationPeers {
  catalog: Pick<SchedulerPeers["catalog"], "planExport" | "listExportSpecs">;
  cursor: Pick<
    SchedulerPeers["cursor"],
    "claimOperation" | "renewOperation" | "finishOperation" | "journalPending" | "clearPending" | "getBackfill" | "setBackfillTotals" | "commitBackfillBatch" | "listExtents" | "listOperations" | "listArtifacts"
  >;
  query: Pick<SchedulerPeers["query"], "executeToSpool" | "discardSpool">;
  writer: Pick<SchedulerPeers["writer"], "stageArtifacts" | "uploadArtifacts" | "discardStage" | "deleteArtifacts" | "findDeltaCommit">;
}

export interface OperationRunnerOptions {
  ownerId?: string;
  leaseTtlMs?: number;
  /** How often it looks for operations to take. */
  pollMs?: number;
  /** Operations this scheduler runs at once. */
  maxConcurrent?: number;
  retry?: RetryOptions;
  log?: (line: string) => void;
}

/** The ExportToTable request the query service recorded (services/query one-shot-export.ts). */
interface OneShotRequest {
  externalTable: string;
  query: string;
  queryLanguage: string;
  sizeLimit: string;
  parquetRowGroupSize: number;
}

/** A managed backfill's operation (services/catalog catalog.ts backfill). */
interface BackfillRequest {
  kind: "Backfill";
  exportId: string;
  name: string;
  /** Where its files go, to remove an attempt's even once the export is gone. */
  externalTable?: string;
}

/**
 * A file an operation wrote, as the writer reports it and the ledger records it; `md5` as the
 * storage reported it on upload, for the manifest (absent when it did not).
 */
type OperationArtifact = { path: string; numRecords: bigint; sizeInBytes: bigint; md5?: string };

/** A backfill batch queried and staged, waiting for its upload and commit. */
interface PreparedBatch {
  batch: { upTo: bigint; records: bigint };
  number: bigint;
  handle: string;
  /** The export as it was when the batch was queried. */
  spec: ExportSpec;
  /** Absent when the query kept none of the batch's records. */
  staged?: { artifacts: OperationArtifact[]; alreadyCommitted: boolean };
}

/** How long an operation waits before it is tried again when what it needs cannot be read now. */
const RETRY_LATER_MS = 10_000;

/** A commit of an operation's txn in its Delta table's log: its files, and the cursor its range ends at. */
type DeltaCommit = { artifacts: OperationArtifact[]; toCursor: string };

/** An operation as this attempt claimed it, with the attempt's own lease owner. */
type Claimed = { operationId: string; owner: string; database: string; requestJson: string; abandoned: boolean; pending: string[]; claim: bigint; claimedBeforeNumbering: boolean };
/** What the ledger knows an attempt by. */
type Attempt = Pick<Claimed, "operationId" | "owner">;

/**
 * How many txn versions a backfill batch has in a Delta log: one per claim of the operation.
 * Batch n's are n × BATCH_TXNS + claim, so a claim taking over fences the versions of the
 * claims before it without fencing its own, and the batch keeps being committed at most once
 * (any earlier claim's commit of it with files is the batch's: StageArtifactsRequest.delta_txn_since).
 */
const BATCH_TXNS = 1n << 24n;
const MAX_BATCHES = 1n << 29n;

/** The records of the extents up to cursor `upTo`. */
function recordsUpTo(extents: Array<{ cursor: string; rowCount: bigint }>, upTo: bigint): bigint {
  return extents.filter((e) => BigInt(e.cursor) <= upTo).reduce((n, e) => n + e.rowCount, 0n);
}

/** The txn versions of backfill batch `batch` in a Delta log, up to claim `claim`'s (see BATCH_TXNS). */
export function batchTxn(batch: bigint, claim: bigint): { version: bigint; since: bigint } {
  if (claim < 0n || claim >= BATCH_TXNS) throw new SpillwayError(ErrorCode.failedPrecondition, `the backfill was claimed ${claim} times, more than its Delta txn versions can number`);
  // Versions go through the writer as JavaScript numbers: exact below 2^53.
  if (batch >= MAX_BATCHES) throw new SpillwayError(ErrorCode.failedPrecondition, `a backfill to a Delta table has at most ${MAX_BATCHES} batches; raise the export's sizeLimit`);
  return { version: batch * BATCH_TXNS + claim, since: batch * BATCH_TXNS };
}

/**
 * The batches a backfill's extents make, in cursor order: each ends at the extent where its
 * bytes reach `batchBytes` (at least one extent a batch), with its records.
 */
export function batchesOf(extents: Array<{ cursor: string; sizeBytes: bigint; rowCount: bigint }>, batchBytes: bigint): Array<{ upTo: bigint; records: bigint }> {
  const batches: Array<{ upTo: bigint; records: bigint }> = [];
  let bytes = 0n;
  let records = 0n;
  for (const [i, e] of extents.entries()) {
    bytes += e.sizeBytes;
    records += e.rowCount;
    if (bytes >= batchBytes || i === extents.length - 1) {
      batches.push({ upTo: BigInt(e.cursor), records });
      bytes = 0n;
      records = 0n;
    }
  }
  return batches;
}

/** Another scheduler took the operation (this one was paused or cut off past its lease): it is that one's to end. */
class LeaseLost extends SpillwayError {
  constructor() {
    super(ErrorCode.aborted, "this scheduler lost the operation's lease");
  }
}

/** Whether the commit or a check said this scheduler no longer holds the operation. */
function isLeaseLost(err: unknown): boolean {
  return err instanceof LeaseLost || (err instanceof SpillwayError && err.code === ErrorCode.aborted && /no longer this scheduler's/.test(err.message));
}

/** Whether a commit landed cannot be told now: the next claim settles it from the journal. */
class Unsettled extends SpillwayError {
  constructor() {
    super(ErrorCode.unavailable, "whether the batch committed cannot be read now");
  }
}

/** The operation was asked to stop: it ends Canceled, with nothing of it left in storage. */
class OperationCanceled extends SpillwayError {
  constructor() {
    super(ErrorCode.cancelled, "canceled by request");
  }
}

/**
 * Runs one-shot exports (SPEC §6a) as operations the ledger hands out: each under a lease,
 * through the same steps as a continuous run (the query service spools, the writer stages,
 * the files are journaled, uploaded, then committed with the operation's end in one
 * transaction). A failed or canceled one deletes what it uploaded; one whose scheduler died
 * is taken by the next claim, which deletes what it journaled and fails it.
 */
export class OperationRunner {
  private readonly inFlight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private polling = false;
  readonly ownerId: string;
  private readonly leaseTtlMs: number;
  private readonly pollMs: number;
  private readonly maxConcurrent: number;
  private readonly retry: RetryOptions;
  private readonly log: (line: string) => void;

  constructor(
    private readonly peers: OperationPeers,
    options: OperationRunnerOptions = {},
  ) {
    this.ownerId = options.ownerId ?? randomUUID();
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.pollMs = options.pollMs ?? 500;
    this.maxConcurrent = options.maxConcurrent ?? 2;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.log = options.log ?? (() => undefined);
  }

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.pollMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Takes operations while there is room; each runs on its own. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      while (this.inFlight.size < this.maxConcurrent) {
        // An owner of this attempt's own (this scheduler's id and a token): a later claim, even
        // this scheduler's own (its retry after giveUp), fences out an attempt still running
        // with its renewals late, and the ledger checks only the owner once a lease expired.
        const owner = `${this.ownerId}/${randomUUID().slice(0, 8)}`;
        const found = await this.peers.cursor.claimOperation({ owner, leaseTtlMs: BigInt(this.leaseTtlMs) });
        if (!found.found) return;
        const claimed: Claimed = { ...found, owner };
        const running = this.runClaimed(claimed).catch((err) => this.log(`scheduler: operation ${claimed.operationId}: ${errorMessage(err)}`));
        this.inFlight.add(running);
        void running.finally(() => this.inFlight.delete(running));
      }
    } catch (err) {
      this.log(`scheduler: could not look for operations: ${errorMessage(err)}`);
    } finally {
      this.polling = false;
    }
  }

  /** Waits for the operations in flight (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private async runClaimed(claimed: Claimed): Promise<void> {
    const { operationId } = claimed;
    const parsed = JSON.parse(claimed.requestJson) as OneShotRequest | BackfillRequest;
    if ("kind" in parsed && parsed.kind === "Backfill") return this.runBackfill(claimed, parsed);
    const request = parsed as OneShotRequest;
    const account = new RunAccount();
    const heartbeat = setInterval(() => void this.renew(claimed).catch(() => undefined), Math.max(100, this.leaseTtlMs / 3));
    let uploaded: string[] | undefined;
    let spec: ExportSpec | undefined;
    let committing = false;
    // This claim's own: its stage, spool and files carry it, so they are no other attempt's.
    const token = randomUUID().slice(0, 8);
    const handle = `${operationId}-${token}`;
    try {
      if (claimed.abandoned) {
        // Its run did not end cleanly: what it journaled may be in storage. Only the target is
        // needed to remove it (its query may no longer plan); until that works, it is not ended.
        let target: ExportSpec;
        try {
          target = await this.plan(claimed.database, operationId, request, true);
        } catch (err) {
          // Its files may be in a Delta table's log: it is ended only once its target can be read, or never will be.
          if (isPermanent(err) || claimed.pending.length === 0) throw err;
          await this.giveUp(claimed, RETRY_LATER_MS);
          return;
        }
        // A Delta table's log may have taken its files already (only if it journaled some): then it did complete.
        const landed = claimed.pending.length ? await this.deltaCommitOf(target, claimed, { version: 1n }) : undefined;
        if (landed === "unknown") return;
        if (landed) return await this.finish(claimed, "Completed", "", target, landed.artifacts, account);
        if (!(await this.cleanedUp(target, claimed, claimed.pending))) return;
        return await this.finish(claimed, "Failed", "its run did not end cleanly (its process stopped, or its clean-up failed); what it had written was removed", target, [], account);
      }
      spec = await account.phase("plan", () => this.plan(claimed.database, operationId, request));
      await this.assertNotCanceled(claimed, "query");
      const spool = await account.phase("query", () => withRetry(() => this.peers.query.executeToSpool(spoolRequest(spec!, { after: 0n, upTo: 0n }, handle)), this.retry));
      account.add(spool.usage);
      if (spool.rowCount === 0n) return await this.finish(claimed, "Completed", "", spec, [], account, oneShotManifest(spec, operationId, []));
      await this.assertNotCanceled(claimed, "stage");
      const staged = await account.phase("stage", () =>
        withRetry(() => this.peers.writer.stageArtifacts({ ...stageRequest(spec!, { completedRuns: 0n, from: 0n, to: 0n }, handle, spool), nameStem: `export_${operationId.slice(0, 8)}_${token}` }), this.retry),
      );
      account.add(staged.usage);
      // Delta (txn {operation id, 1}): an earlier claim's upload is in the table's log.
      if (staged.alreadyCommitted) return await this.finish(claimed, "Completed", "", spec, staged.artifacts, account);
      const paths = staged.artifacts.map((a) => a.path);
      // Only while this claim holds the operation: one taken over meanwhile uploads nothing.
      await account.phase("journal", () => this.peers.cursor.journalPending({ exportId: operationId, runId: token, paths, operationOwner: claimed.owner }));
      await this.assertNotCanceled(claimed, "upload");
      uploaded = paths;
      const done = await account.phase("upload", () => withRetry(() => this.peers.writer.uploadArtifacts({ stageId: handle }), this.retry));
      account.add(done.usage);
      // A Delta table's upload ends with its log commit: the export is in the table, past canceling.
      if (!isDelta(spec)) await this.assertNotCanceled(claimed, "commit");
      committing = true;
      const artifacts = done.artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeInBytes: a.sizeInBytes, md5: a.md5 }));
      await this.finish(claimed, "Completed", "", spec, artifacts, account, oneShotManifest(spec, operationId, artifacts));
    } catch (err) {
      if (committing) {
        // A commit whose answer was lost may have landed: its files are the operation's now. So
        // may they be when the ledger cannot be read: left journaled, for the next claim to settle.
        // Ended otherwise (Failed or Canceled), another claim took it while this one was past its
        // last check: that one removed what was journaled then, and these files came after.
        const state = await this.stateOf(claimed.database, operationId);
        if (state === "" || state === "Completed") return;
      }
      if (uploaded && spec && isDelta(spec)) {
        // Its upload may have reached the table's log: then it completed, whatever failed after.
        const landed = await this.deltaCommitOf(spec, claimed, { version: 1n });
        if (landed === "unknown") return;
        if (landed) return await this.finish(claimed, "Completed", "", spec, landed.artifacts, account).catch(() => this.giveUp(claimed));
      }
      const canceled = err instanceof OperationCanceled;
      if (uploaded && spec && !(await this.cleanedUp(spec, claimed, uploaded))) return;
      // Another scheduler has it now: that one ends it (its own files, named with this token, are gone).
      if (isLeaseLost(err)) return;
      const cleanup = uploaded ? "; the files it had written were removed" : "";
      await this.finish(claimed, canceled ? "Canceled" : "Failed", redactSecrets(errorMessage(err) + cleanup), spec, [], account).catch((e: unknown) =>
        this.log(`scheduler: operation ${operationId} could not be recorded as ended: ${errorMessage(e)}`),
      );
    } finally {
      clearInterval(heartbeat);
      await this.discard(handle);
    }
  }

  /**
   * A managed backfill: batches of about sizeLimit bytes of extents, from where the last
   * committed one ended up to the export's start cursor, each through the export's own query
   * and target and committed once with the backfill's progress. One whose scheduler died
   * resumes here after its journaled (uncommitted) files are deleted.
   */
  private async runBackfill(claimed: Claimed, request: BackfillRequest): Promise<void> {
    const { operationId } = claimed;
    const account = new RunAccount();
    const heartbeat = setInterval(() => void this.renew(claimed).catch(() => undefined), Math.max(100, this.leaseTtlMs / 3));
    // This claim's own: its files and handles carry it, so they are no other attempt's.
    const token = randomUUID().slice(0, 8);
    let spec: ExportSpec | undefined;
    // The spools and stages of the batches under way (named by this claim's token).
    const handles = new Set<string>();
    // The next batch, queried and staged while the one before it is uploaded.
    let next: Promise<PreparedBatch | undefined> | undefined;
    let uploaded: string[] | undefined;
    // The number of the batch being uploaded to a Delta table, whose log may have taken it.
    let inDelta: bigint | undefined;
    // An earlier claim's commit of the first batch is in the Delta log, not yet in the ledger.
    let adopting = false;
    try {
      let backfill;
      try {
        backfill = await this.peers.cursor.getBackfill({ operationId });
      } catch (err) {
        // Not ended while what earlier claims left cannot be settled: tried again in a while.
        if (isRetryable(err)) return await this.giveUp(claimed, RETRY_LATER_MS);
        throw err;
      }
      const { progress, doneCursor } = backfill;
      const firstBatch = progress!.batchesDone + 1n;
      try {
        spec = await this.exportSpec(claimed.database, request);
      } catch (err) {
        // Not known to be gone (the catalog did not answer): not ended, tried again in a while.
        if (isRetryable(err)) return await this.giveUp(claimed, RETRY_LATER_MS);
        // The export is gone: what an attempt journaled is still removed, through its table,
        // and the backfill is ended only once that is done, or its table will never be read.
        if (claimed.pending.length && request.externalTable) {
          let target: ExportSpec;
          try {
            target = await this.plan(claimed.database, operationId, { externalTable: request.externalTable, query: "", queryLanguage: "", sizeLimit: "0", parquetRowGroupSize: 0 }, true);
          } catch (planErr) {
            if (!isRetryable(planErr)) throw planErr;
            return await this.giveUp(claimed, RETRY_LATER_MS);
          }
          // As below: earlier claims' versions of the next batch are fenced before their files go.
          if ((await this.earlierClaimsBatch(target, claimed, firstBatch)) === "unknown") return;
          if (!(await this.cleanedUp(target, claimed, claimed.pending))) return;
        }
        throw err;
      }
      // The first batch as an earlier claim committed it to the Delta log, if one did: the
      // batch's commit, with its range and files, committed to the ledger before any check or
      // query that could end the backfill without it. The writer keeps the files the log has,
      // and they stay journaled until then. Whatever fails before that commit leaves the
      // backfill to a later claim, not ended (adopting).
      const inLog = await this.earlierClaimsBatch(spec, claimed, firstBatch);
      if (inLog === "unknown") return;
      adopting = !!inLog?.toCursor;
      if (claimed.abandoned && claimed.pending.length && !(await this.cleanedUp(spec, claimed, claimed.pending))) return;
      const to = BigInt(progress!.toCursor);
      const extentsAfter = async (after: bigint) => (await this.peers.cursor.listExtents({ database: spec!.database, tables: spec!.factTables, afterCursor: cursorText(after), upToCursor: to.toString() })).extents;
      const batchBytes = BigInt(spec.properties?.sizeLimit || 1n << 30n);
      let total = progress!.batchesTotal;
      if (total === 0n) {
        // Sized once, from what the range holds when it begins.
        const all = await extentsAfter(BigInt(progress!.fromCursor || "0"));
        const records = all.reduce((n, e) => n + e.rowCount, 0n);
        total = BigInt(batchesOf(all, batchBytes).length);
        await this.peers.cursor.setBackfillTotals({ operationId, recordsTotal: records, batchesTotal: total });
      }
      // Each batch is queried and staged while the one before it uploads and commits: the
      // two use different resources (DuckDB here, storage there), and commits stay in order.
      const prepare = async (from: bigint, number: bigint): Promise<PreparedBatch | undefined> => {
        const extents = await extentsAfter(from);
        const handle = `${operationId}-b${number}-${token}`;
        if (number === firstBatch && inLog?.toCursor) {
          // The table's already: committed past canceling, whatever a query of its range gives now.
          const upTo = BigInt(inLog.toCursor);
          const staged = { artifacts: inLog.artifacts, alreadyCommitted: true };
          return { batch: { upTo, records: recordsUpTo(extents, upTo) }, number, handle, spec: spec!, staged };
        }
        const batch = batchesOf(extents, batchBytes)[0];
        if (!batch) return undefined;
        await this.assertNotCanceled(claimed, `batch ${number} of ${total}`);
        const batchSpec = await this.exportSpec(claimed.database, request);
        handles.add(handle);
        const spool = await account.phase("query", () => withRetry(() => this.peers.query.executeToSpool(spoolRequest(batchSpec, { after: from, upTo: batch.upTo }, handle)), this.retry));
        account.add(spool.usage);
        if (spool.rowCount === 0n) return { batch, number, handle, spec: batchSpec };
        // Delta: the batch's log commit carries txn {operation id, this claim's version of the batch}.
        const txn = batchTxn(number, claimed.claim);
        const staged = await account.phase("stage", () =>
          withRetry(
            () =>
              this.peers.writer.stageArtifacts({
                ...stageRequest({ ...batchSpec, id: operationId }, { completedRuns: number - 1n, from, to: batch.upTo }, handle, spool),
                deltaTxnVersion: txn.version,
                deltaTxnSince: txn.since,
                nameStem: `${batchSpec.id.slice(0, 8)}_backfill_${operationId.slice(0, 8)}_${number}_${token}`,
              }),
            this.retry,
          ),
        );
        account.add(staged.usage);
        // An earlier claim's upload of this batch is in the Delta log: it is committed with the range it
        // covered (which differs from this one's when sizeLimit was altered since), and that range's records.
        if (staged.alreadyCommitted && staged.committedToCursor && BigInt(staged.committedToCursor) !== batch.upTo) {
          batch.upTo = BigInt(staged.committedToCursor);
          batch.records = recordsUpTo(extents, batch.upTo);
        }
        return { batch, number, handle, spec: batchSpec, staged };
      };
      let done = BigInt(doneCursor || "0");
      next = prepare(done, firstBatch);
      for (;;) {
        const current = await next;
        if (!current) break;
        const { batch, number, handle, staged } = current;
        spec = current.spec;
        next = prepare(batch.upTo, number + 1n);
        // Awaited at the next turn, or by the clean-up when this batch fails.
        next.catch(() => undefined);
        let artifacts: OperationArtifact[] = [];
        inDelta = undefined;
        if (staged?.alreadyCommitted) {
          // In the log: committed to the ledger below, or left for the next claim (never ended without it).
          inDelta = number;
          artifacts = staged.artifacts;
        } else if (staged) {
          // Checked again here: the check before this batch's query ran while the batch before it was uploaded.
          await this.assertNotCanceled(claimed, `upload of batch ${number} of ${total}`);
          const paths = staged.artifacts.map((a) => a.path);
          await this.peers.cursor.journalPending({ exportId: operationId, runId: token, paths, operationOwner: claimed.owner });
          uploaded = paths;
          if (isDelta(spec)) inDelta = number;
          artifacts = (await account.phase("upload", () => withRetry(() => this.peers.writer.uploadArtifacts({ stageId: handle }), this.retry))).artifacts;
        }
        // A batch in a Delta table's log is the table's: it is committed here too, past canceling.
        if (!isDelta(spec) || !staged) await this.assertNotCanceled(claimed, "commit");
        const commit = {
          operationId,
          owner: claimed.owner,
          externalTable: spec.externalTable?.name ?? "",
          fromCursor: done.toString(),
          upToCursor: batch.upTo.toString(),
          artifacts,
          records: batch.records,
          manifest: manifestOf(
            spec,
            { key: `${operationId}-${number}`, kind: "BackfillBatch", name: `${spec.name}/backfill-${operationId}-${number}`, exportName: spec.name, runNumber: number, from: done, to: batch.upTo },
            artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeBytes: a.sizeInBytes, md5: a.md5 })),
          ),
        };
        try {
          await this.peers.cursor.commitBackfillBatch(commit);
        } catch (err) {
          const landed = await this.batchLanded(err, request.exportId, operationId, batch.upTo, artifacts);
          // Unknown (the ledger cannot be read): its files stay journaled, for the next claim to settle.
          if (landed === undefined) {
            uploaded = undefined;
            throw new Unsettled();
          }
          // Not landed: the files it uploaded are removed (below), whoever commits the batch.
          if (!landed) throw err;
          // An answer lost while the commit landed: the batch is the export's, and the backfill goes on.
        }
        uploaded = undefined;
        inDelta = undefined;
        adopting = false;
        handles.delete(handle);
        await this.discard(handle);
        done = batch.upTo;
      }
      await this.finish(claimed, "Completed", "", spec, [], account);
    } catch (err) {
      if (adopting && !isLeaseLost(err)) {
        this.log(`scheduler: backfill ${operationId}: a batch its Delta table's log has could not be committed yet (${redactSecrets(errorMessage(err))}); it is left for another attempt`);
        await this.giveUp(claimed, RETRY_LATER_MS);
        return;
      }
      // A batch the Delta log may hold is settled by the next claim, which finds it committed (earlierClaimsBatch) or not.
      // Not asked once the lease is another claim's: that claim settles it, fencing this claim's version as it takes over.
      const settledInLog = inDelta !== undefined && spec && !isLeaseLost(err) && !(err instanceof Unsettled) ? await this.deltaCommitOf(spec, claimed, batchTxn(inDelta, claimed.claim)) : undefined;
      // Unreadable: the lease was given up for a while already.
      if (settledInLog === "unknown") return;
      if (err instanceof Unsettled || settledInLog) {
        await this.giveUp(claimed);
        return;
      }
      // Its own files (named with this claim's token, so no other attempt's) are removed whatever happens.
      if (uploaded && spec && !(await this.cleanedUp(spec, claimed, uploaded))) return;
      // Another scheduler has it now: that one ends it.
      if (isLeaseLost(err)) return;
      const canceled = err instanceof OperationCanceled;
      const cleanup = uploaded ? "; the files of the batch in progress were removed (committed batches stay)" : "";
      await this.finish(claimed, canceled ? "Canceled" : "Failed", redactSecrets(errorMessage(err) + cleanup), spec, [], account).catch((e: unknown) =>
        this.log(`scheduler: backfill ${operationId} could not be recorded as ended: ${errorMessage(e)}`),
      );
    } finally {
      clearInterval(heartbeat);
      // A batch being prepared when another failed is let finish before its spool and stage go.
      await next?.catch(() => undefined);
      await Promise.all([...handles].map((h) => this.discard(h)));
    }
  }

  /**
   * Whether a backfill batch whose commit failed with `err` landed all the same (its answer
   * lost): undefined when the ledger cannot tell now. A refusal for the lease is a commit that
   * did not land. Otherwise a batch with files landed if the ledger has them as the export's
   * artifacts: they carry this claim's token, so no other claim committed them; the backfill's
   * progress alone cannot tell, as another claim (this one paused past its lease) may have
   * committed the same batch with files of its own. A batch without files landed if the
   * backfill is past it.
   */
  private async batchLanded(err: unknown, exportId: string, operationId: string, upTo: bigint, artifacts: OperationArtifact[]): Promise<boolean | undefined> {
    if (isLeaseLost(err)) return false;
    try {
      if (artifacts.length) {
        const ours = new Set(artifacts.map((a) => a.path));
        return (await withRetry(() => this.peers.cursor.listArtifacts({ exportId }), this.retry)).artifacts.some((a) => ours.has(a.path));
      }
      const { doneCursor } = await withRetry(() => this.peers.cursor.getBackfill({ operationId }), this.retry);
      return BigInt(doneCursor || "0") >= upTo;
    } catch {
      return undefined;
    }
  }

  /**
   * Deletes files of the operation that were not committed. When that fails, the operation
   * is not ended: its lease is given up, so the next claim (here or on another node) takes it
   * as abandoned and tries again. Says whether they are gone.
   */
  private async cleanedUp(spec: ExportSpec, attempt: Attempt, paths: string[]): Promise<boolean> {
    try {
      await this.deleteFiles(spec, attempt.operationId, paths);
      return true;
    } catch (err) {
      this.log(`scheduler: operation ${attempt.operationId}: its files could not all be removed (${errorMessage(err)}); it is left for another attempt`);
      // Not at once: the storage refused, and each claim of a backfill to Delta fences its table's log again.
      await this.giveUp(attempt, RETRY_LATER_MS);
      return false;
    }
  }

  /**
   * An abandoned backfill's first batch as earlier claims left it in its Delta table's log,
   * asked before anything else. When they journaled files, their versions of the batch are
   * fenced first (an empty commit at this claim's version less one, which refuses theirs but
   * not this claim's): one paused between its upload and its log commit could otherwise make
   * files about to be removed the table's. A claim that journaled nothing uploaded nothing: its
   * journal is refused once another claim holds the operation. The commit one of them made, if
   * any, is the batch's; "unknown" when the log cannot be read now (the lease was given up).
   */
  private async earlierClaimsBatch(spec: ExportSpec, claimed: Claimed, batch: bigint): Promise<DeltaCommit | "unknown" | undefined> {
    if (!isDelta(spec) || !claimed.abandoned) return undefined;
    const found = await this.deltaCommitOf(spec, claimed, batchTxn(batch, claimed.claim - 1n), claimed.pending.length > 0);
    // Only a Spillway from before claims were numbered committed a batch under its number alone
    // (the fence above refuses such commits too), and its files stay journaled until the ledger
    // records it: asked of such an operation, while files are (a search of the whole log). Only
    // a commit with its range is one: the log answers a version it has passed as held, with none.
    if (found !== undefined || !claimed.claimedBeforeNumbering || !claimed.pending.length || batch >= BATCH_TXNS) return found;
    const legacy = await this.deltaCommitOf(spec, claimed, { version: batch }, false);
    return legacy === "unknown" || legacy?.toCursor ? legacy : undefined;
  }

  /**
   * The commit of txn {appId, version} in a Delta target's log (a backfill batch's: any version
   * from `since` committed with files), asked before the operation is ended or its files are
   * removed: undefined when the log does not have it (it is then fenced, unless asked not to:
   * an empty commit takes the txn, so no upload still under way can commit it later) or the
   * target is not Delta; "unknown" when the log cannot be read now (the lease is given up, for
   * a later claim to ask again). A log that will never be read (a permanent error) counts as
   * not having it.
   */
  private async deltaCommitOf(spec: ExportSpec, attempt: Attempt, txn: { version: bigint; since?: bigint }, fence = true): Promise<DeltaCommit | "unknown" | undefined> {
    if (!isDelta(spec)) return undefined;
    const appId = attempt.operationId;
    try {
      const found = await withRetry(() => this.peers.writer.findDeltaCommit({ externalTable: spec.externalTable, appId, txnVersion: txn.version, sinceVersion: txn.since ?? 0n, fence }), this.retry);
      return found.committed ? { artifacts: found.artifacts, toCursor: found.toCursor } : undefined;
    } catch (err) {
      if (isPermanent(err)) {
        this.log(`scheduler: operation ${appId}: its Delta table's log cannot be read (${errorMessage(err)}); it is ended as not committed`);
        return undefined;
      }
      this.log(`scheduler: operation ${appId}: its Delta table's log could not be read (${errorMessage(err)}); it is left for another attempt`);
      await this.giveUp(attempt, RETRY_LATER_MS);
      return "unknown";
    }
  }

  /**
   * Lets the lease go, at once or after `afterMs`, so the next claim (this scheduler's or
   * another's) takes the operation as abandoned: after a while when what it waits for (a
   * storage account, the catalog) is down, so it is not retried in a tight loop.
   */
  private async giveUp({ operationId, owner }: Attempt, afterMs = 0): Promise<void> {
    await this.peers.cursor.renewOperation({ operationId, owner, leaseTtlMs: BigInt(afterMs) }).catch(() => undefined);
  }

  /** The operation's state in the ledger; '' when it cannot be read now. */
  private async stateOf(database: string, operationId: string): Promise<string> {
    try {
      return (await this.peers.cursor.listOperations({ database, operationId })).operations[0]?.state ?? "";
    } catch {
      return "";
    }
  }

  /** The export a backfill is of, as it is now: refused when it was dropped (or dropped and made again). */
  private async exportSpec(database: string, request: BackfillRequest): Promise<ExportSpec> {
    const { specs } = await withRetry(() => this.peers.catalog.listExportSpecs({ database, name: request.name }), this.retry);
    const spec = specs[0];
    if (!spec || spec.id !== request.exportId) throw new SpillwayError(ErrorCode.failedPrecondition, `continuous export '${request.name}' was dropped; its backfill stops`);
    if (!spec.externalTable) throw new SpillwayError(ErrorCode.failedPrecondition, `the external table of continuous export '${request.name}' no longer exists`);
    return spec;
  }

  private async discard(handle: string): Promise<void> {
    await Promise.allSettled([this.peers.writer.discardStage({ stageId: handle }), this.peers.query.discardSpool({ spoolName: handle })]);
  }

  /** The operation's plan from the catalog, as a run spec named after the operation. */
  private async plan(database: string, operationId: string, request: OneShotRequest, targetOnly = false): Promise<ExportSpec> {
    const { spec } = await withRetry(
      () =>
        this.peers.catalog.planExport({
          database,
          externalTable: request.externalTable,
          query: request.query,
          queryLanguage: request.queryLanguage,
          properties: { sizeLimit: BigInt(request.sizeLimit || "0"), parquetRowGroupSize: request.parquetRowGroupSize },
          targetOnly,
        }),
      this.retry,
    );
    return { ...spec!, id: operationId, name: operationId };
  }

  private async renew({ operationId, owner }: Attempt, phase = ""): Promise<{ held: boolean; cancelRequested: boolean }> {
    return this.peers.cursor.renewOperation({ operationId, owner, leaseTtlMs: BigInt(this.leaseTtlMs), phase });
  }

  /** Between steps: says which step comes next, and stops when asked to or when the lease went to another scheduler. */
  private async assertNotCanceled(attempt: Attempt, next: string): Promise<void> {
    const { held, cancelRequested } = await this.renew(attempt, next);
    if (cancelRequested) throw new OperationCanceled();
    if (!held) throw new LeaseLost();
  }

  /** Deletes `paths` from the target, then forgets them in the journal (but those a Delta log holds: removeJournaledFiles). */
  private async deleteFiles(spec: ExportSpec, operationId: string, paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.peers.cursor.clearPending({ exportId: operationId, paths: await removeJournaledFiles(this.peers.writer, spec.externalTable, paths, this.retry) });
  }

  private async finish(
    { operationId, owner }: Attempt,
    state: "Completed" | "Failed" | "Canceled",
    status: string,
    spec: ExportSpec | undefined,
    artifacts: OperationArtifact[],
    account: RunAccount,
    manifest?: ManifestToWrite,
  ): Promise<void> {
    const resources: MessageInitShape<typeof RunResourcesSchema> = account.resources(artifacts.map((a) => ({ numRecords: a.numRecords, sizeBytes: a.sizeInBytes })));
    await this.peers.cursor.finishOperation({
      operationId,
      owner,
      state,
      status,
      externalTable: spec?.externalTable?.name ?? "",
      artifacts,
      resources: create(RunResourcesSchema, resources),
      manifest,
    });
  }
}

/** A completed one-shot export's manifest: `export-to-table/<operation id>.json`, listing its files (none when its query returned nothing). */
function oneShotManifest(spec: ExportSpec, operationId: string, artifacts: OperationArtifact[]): ManifestToWrite | undefined {
  return manifestOf(spec, { key: operationId, kind: "ExportToTable", name: `export-to-table/${operationId}`, exportName: operationId, from: 0n, to: 0n }, artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeBytes: a.sizeInBytes, md5: a.md5 })));
}

function isDelta(spec: ExportSpec): boolean {
  return spec.externalTable?.kind === "delta";
}
