import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { context, propagation } from "@opentelemetry/api";
import { ErrorCode, invalidArgument, notFound, SpillwayError } from "@spillway/errors";
import { cursorText, dateFromCursor, minCursor, parseCursor } from "@spillway/kusto";
import type {
  AddFailureRequest,
  ClearPendingRequest,
  CommitRunRequest,
  CursorService,
  FailRunRequest,
  FailureToRecord,
  JournalPendingRequest,
  ListPendingArtifactsRequest,
  HoldExportForDropRequest,
  PurgeExportStateRequest,
  RecoverAbandonedRunsRequest,
  ReleaseLeaseRequest,
  RenewLeaseRequest,
  RunExportNowResponse,
  SetSystemDisabledRequest,
  HeartbeatRequest,
  ListNodesRequest,
  GetExportBacklogsRequest,
  ListRunsRequest,
  ResetExportCheckpointRequest,
  CreateBackfillRequest,
  GetBackfillRequest,
  SetBackfillTotalsRequest,
  CommitBackfillBatchRequest,
  ListBackfillsRequest,
  ListDueManifestsRequest,
  ForgetManifestRequest,
  DueManifest,
  CreateOperationRequest,
  ClaimOperationRequest,
  RenewOperationRequest,
  FinishOperationRequest,
  RequestOperationCancelRequest,
  ListOperationsRequest,
  RunResources,
  GetRunRangeRequest,
  StartRunRequest,
} from "@spillway/proto";
import { RunResourcesSchema } from "@spillway/proto";
import type { ServiceImpl } from "@spillway/rpc";
import type { ArtifactRecord, BackfillRecord, CursorStore, DueManifestRecord, ExportStateRecord, OperationRecord, RunRecord } from "./cursor-store.js";
import type { RunRequestBoard } from "./run-request-board.js";

/** gRPC handlers of CursorService: translation between wire and the store and runner. */
export function cursorHandlers(store: CursorStore, runRequests: RunRequestBoard<RunExportNowResponse>): ServiceImpl<typeof CursorService> {
  return {
    ...ledgerHandlers(store),
    async getCurrentCursor() {
      return { cursor: cursorText(await store.currentCursor()) };
    },
    async commitExtent(req) {
      const extent = { database: req.database, table: req.table, extentId: req.extentId, path: req.path, rowCount: req.rowCount, sizeBytes: req.sizeBytes };
      const { cursor, skipped } = await store.commitTaggedExtent(extent, req.tags, req.ifNotExists, req.replace);
      return { cursor: cursor === undefined ? "" : cursor.toString(), skipped };
    },
    findExtentTags: async (req) => ({ found: await store.findExtentTags(req.database, req.table, req.tags) }),
    async listExtents(req) {
      const after = parseCursor(req.afterCursor, "afterCursor");
      const upTo = req.upToCursor ? parseCursor(req.upToCursor, "upToCursor") : undefined;
      const { extents, cursor } = await store.listExtents(req.database, req.tables, after, upTo);
      return { extents: extents.map((e) => ({ ...e, cursor: e.cursor.toString() })), cursor: cursorText(cursor) };
    },
    async dropTableExtents(req) {
      // The files are the query service's: it deletes them (ListDroppedExtents).
      await store.dropTableExtents(req.database, req.table);
      return {};
    },
    listDroppedExtents: async (req) => ({ extents: await store.droppedExtents(req.limit || 1000) }),
    forgetDroppedExtents: async (req) => (await store.forgetDroppedExtents(req.extentIds), {}),
    async initExportState(req) {
      return { state: stateMessage(await store.initExportState(req.exportId, req.database, req.name)) };
    },
    async getExportStates(req) {
      return { states: (await store.getExportStates(req.exportIds)).map(stateMessage) };
    },
    async listArtifacts(req) {
      return { artifacts: (await store.listArtifacts(req.exportId)).map(artifactMessage) };
    },
    async listFailures(req) {
      const failures = req.sinceLastSuccess ? await store.failuresSinceLastSuccess(req.exportId) : await store.listFailures(req.exportId);
      return {
        failures: failures.map((f) => ({
          ...f,
          timestamp: timestampFromDate(f.timestamp),
          lastSuccessRun: f.lastSuccessRun && timestampFromDate(f.lastSuccessRun),
        })),
      };
    },
    async runExportNow(req) {
      // The run joins the trace of the call that asked for it, in whichever process runs it.
      const trace: { traceparent?: string; tracestate?: string } = {};
      propagation.inject(context.active(), trace);
      const { $typeName: _, ...outcome } = await runRequests.request(req.database, req.name, trace);
      return outcome;
    },
    async *watchRunRequests(_req, ctx) {
      yield* runRequests.watch(ctx.signal);
    },
    async completeRunRequest(req) {
      runRequests.complete(
        req.requestId,
        req.outcome ? { outcome: req.outcome } : { error: new SpillwayError((req.errorCode || ErrorCode.internal) as ErrorCode, req.errorMessage) },
      );
      return {};
    },
  };
}

export function artifactMessage(a: ArtifactRecord) {
  return {
    timestamp: timestampFromDate(a.timestamp),
    externalTableName: a.externalTable,
    path: a.path,
    numRecords: a.numRecords,
    sizeInBytes: a.sizeBytes,
  };
}

function stateMessage(s: ExportStateRecord) {
  return {
    exportId: s.exportId,
    checkpointCursor: cursorText(s.checkpointCursor),
    startCursor: cursorText(s.startCursor),
    isRunning: s.isRunning,
    lastRunResult: s.lastRunResult,
    lastRunTime: s.lastRunTime && timestampFromDate(s.lastRunTime),
    lastRunStart: s.lastRunStart && timestampFromDate(s.lastRunStart),
    runCount: s.runCount,
    systemDisabled: s.systemDisabled,
    currentCursor: s.currentCursor === undefined ? "" : cursorText(s.currentCursor),
  };
}

/** A run's upper end from the current cursor: that cursor, or `maxCursor` (forcedLatency) when it is lower. */
function upToOf(maxCursor: string): (current: bigint) => bigint {
  const max = maxCursor ? parseCursor(maxCursor, "maxCursor") : undefined;
  return (current) => (max === undefined ? current : minCursor(current, max));
}

/** The export ledger's RPCs: what run orchestration does to the store, wherever it runs. */
function ledgerHandlers(store: CursorStore) {
  return {
    async getRunRange(req: GetRunRangeRequest) {
      const range = await store.runRange(req.exportId, req.name, req.owner, upToOf(req.maxCursor));
      return { fromCursor: range.from.toString(), toCursor: range.to.toString(), leasedElsewhere: range.leasedElsewhere };
    },
    async startRun(req: StartRunRequest) {
      const started = await store.startRun({
        exportId: req.exportId,
        name: req.name,
        runId: req.runId,
        owner: req.owner,
        leaseTtlMs: Number(req.leaseTtlMs),
        upTo: upToOf(req.maxCursor),
      });
      if (!started) return { started: false };
      return { started: true, runNumber: started.runNumber, fromCursor: started.from.toString(), toCursor: started.to.toString(), startedAt: timestampFromDate(started.startedAt), completedRuns: started.completedRuns, pending: started.pending };
    },
    renewLease: async (req: RenewLeaseRequest) => ({ held: await store.renewLease(req.exportId, req.owner, Number(req.leaseTtlMs)) }),
    releaseLease: async (req: ReleaseLeaseRequest) => (await store.releaseLease(req.exportId, req.owner), {}),
    journalPending: async (req: JournalPendingRequest) => (
      req.operationOwner ? await store.journalOperationPending(req.exportId, req.runId, req.paths, req.operationOwner) : await store.journalPending(req.exportId, req.runId, req.paths, req.owner || undefined), {}
    ),
    listPendingArtifacts: async (req: ListPendingArtifactsRequest) => ({ pending: await store.pendingArtifacts(req.exportId) }),
    clearPending: async (req: ClearPendingRequest) => (await store.clearPending(req.exportId, req.paths), {}),
    async commitRun(req: CommitRunRequest) {
      const committed = await store.commitRun(
        req.exportId,
        req.runId,
        req.externalTable,
        parseCursor(req.fromCursor, "fromCursor"),
        parseCursor(req.toCursor, "toCursor"),
        req.artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeBytes: a.sizeInBytes })),
        req.owner,
        resourcesText(req.resources),
        manifestOf(req.manifest),
      );
      return { artifacts: committed.map(artifactMessage) };
    },
    failRun: async (req: FailRunRequest) => (await store.failRun(req.exportId, req.runId, failureOf(req.failure), req.owner || undefined, resourcesText(req.resources)), {}),
    async resetExportCheckpoint(req: ResetExportCheckpointRequest) {
      const previous = await store.resetCheckpoint(req.exportId, req.name, parseCursor(req.cursor, "cursor"), req.note);
      return { previousCursor: cursorText(previous) };
    },
    async createBackfill(req: CreateBackfillRequest) {
      const created = await store.createBackfill(req.operationId, req.exportId, req.database, req.name, req.fromCursor ? parseCursor(req.fromCursor, "fromCursor") : undefined, req.requestJson);
      return { progress: backfillMessage(created) };
    },
    async getBackfill(req: GetBackfillRequest) {
      const found = await store.backfill(req.operationId);
      if (!found) throw notFound(`backfill '${req.operationId}' does not exist`);
      return { exportId: found.exportId, progress: backfillMessage(found), doneCursor: cursorText(found.done) };
    },
    setBackfillTotals: async (req: SetBackfillTotalsRequest) => (await store.setBackfillTotals(req.operationId, req.recordsTotal, req.batchesTotal), {}),
    async commitBackfillBatch(req: CommitBackfillBatchRequest) {
      await store.commitBackfillBatch(
        req.operationId,
        req.owner,
        req.externalTable,
        parseCursor(req.fromCursor, "fromCursor"),
        parseCursor(req.upToCursor, "upToCursor"),
        req.artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeBytes: a.sizeInBytes })),
        req.records,
        manifestOf(req.manifest),
      );
      return {};
    },
    listBackfills: async (req: ListBackfillsRequest) => ({ backfills: (await store.latestBackfills(req.exportIds)).map((b) => ({ exportId: b.exportId, progress: backfillMessage(b) })) }),
    createOperation: async (req: CreateOperationRequest) => (await store.createOperation(req.operationId, req.database, req.operation, req.requestJson), {}),
    async claimOperation(req: ClaimOperationRequest) {
      const claimed = await store.claimOperation(req.owner, Number(req.leaseTtlMs));
      if (!claimed) return { found: false };
      const { operation, abandoned, pending, claim, claimedBeforeNumbering } = claimed;
      return { found: true, operationId: operation.operationId, database: operation.database, requestJson: operation.request, abandoned, pending, claim, claimedBeforeNumbering };
    },
    renewOperation: async (req: RenewOperationRequest) => store.renewOperation(req.operationId, req.owner, Number(req.leaseTtlMs), req.phase),
    async finishOperation(req: FinishOperationRequest) {
      const state = req.state === "Completed" || req.state === "Canceled" ? req.state : "Failed";
      await store.finishOperation(req.operationId, req.owner, {
        state,
        status: req.status,
        externalTable: req.externalTable,
        artifacts: req.artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeBytes: a.sizeInBytes })),
        resources: resourcesText(req.resources),
        manifest: manifestOf(req.manifest),
      });
      return {};
    },
    listDueManifests: async (req: ListDueManifestsRequest) => ({ manifests: (await store.dueManifests(req.limit || 20)).map((m) => ({ ...m, bodyJson: m.body })) }),
    forgetManifest: async (req: ForgetManifestRequest) => (await store.forgetManifest(req.key), {}),
    async requestOperationCancel(req: RequestOperationCancelRequest) {
      const operation = await store.cancelOperation(req.operationId);
      if (!operation) throw notFound(`operation '${req.operationId}' does not exist`);
      return { operation: operationMessage(operation) };
    },
    listOperations: async (req: ListOperationsRequest) => ({ operations: (await store.listOperations(req.database, req.operationId || undefined)).map(operationMessage) }),
    async listRuns(req: ListRunsRequest) {
      const runs = await store.listRuns(req.exportIds, req.since && timestampDate(req.since));
      return { runs: runs.map(runMessage) };
    },
    addFailure: async (req: AddFailureRequest) => (await store.addFailure(req.exportId, failureOf(req.failure)), {}),
    holdExportForDrop: async (req: HoldExportForDropRequest) => store.holdForDrop(req.exportId, req.owner),
    purgeExportState: async (req: PurgeExportStateRequest) => (await store.dropExportState(req.exportId), {}),
    recoverAbandonedRuns: async (req: RecoverAbandonedRunsRequest) => ({ recovered: await store.recoverAbandonedRuns(Number(req.expiredForMs)) }),
    setSystemDisabled: async (req: SetSystemDisabledRequest) => (await store.setSystemDisabled(req.exportId, req.reason), {}),
    heartbeat: async (req: HeartbeatRequest) => (await store.heartbeat(req.nodeId, req.address), {}),
    listNodes: async (req: ListNodesRequest) => ({ nodes: await store.liveNodes(Number(req.maxAgeMs)) }),
    getExportBacklogs: async (req: GetExportBacklogsRequest) => ({
      backlogs: (await store.exportBacklogs(req.exports.map((e) => ({ exportId: e.exportId, database: e.database, factTables: e.factTables })))).map((b) => ({
        exportId: b.exportId,
        records: b.records,
        oldestCursor: b.oldestCursor === undefined ? "" : b.oldestCursor.toString(),
      })),
    }),
  };
}

function manifestOf(m: DueManifest | undefined): DueManifestRecord | undefined {
  return m && m.key ? { key: m.key, database: m.database, externalTable: m.externalTable, name: m.name, body: m.bodyJson } : undefined;
}

/** Kept as the message's JSON: the store does not read it, and a field added later needs no migration. */
function resourcesText(resources: RunResources | undefined): string {
  return resources ? toJsonString(RunResourcesSchema, resources) : "";
}

/** A run's record of resources; none when it has none or it cannot be read (the run still shows). */
function resourcesOf(text: string): RunResources | undefined {
  if (!text) return undefined;
  try {
    return fromJsonString(RunResourcesSchema, text, { ignoreUnknownFields: true });
  } catch {
    return undefined;
  }
}

function backfillMessage(b: BackfillRecord) {
  return {
    operationId: b.operationId,
    state: b.state,
    status: b.status,
    recordsDone: b.recordsDone,
    recordsTotal: b.recordsTotal,
    batchesDone: b.batchesDone,
    batchesTotal: b.batchesTotal,
    fromCursor: cursorText(b.from),
    toCursor: cursorText(b.to),
    doneCursor: cursorText(b.done),
  };
}

function operationMessage(o: OperationRecord) {
  const ended = o.state !== "InProgress";
  return {
    operationId: o.operationId,
    operation: o.operation,
    nodeId: o.owner,
    startedOn: timestampFromDate(o.startedAt),
    lastUpdatedOn: timestampFromDate(o.updatedAt),
    duration: durationFromMs((ended ? o.updatedAt.getTime() : Date.now()) - o.startedAt.getTime()),
    state: o.state,
    status: o.status,
    database: o.database,
    resources: resourcesOf(o.resources),
    phase: o.state === "InProgress" ? o.phase || (o.owner ? "plan" : "queued") : "",
  };
}

function runMessage(r: RunRecord) {
  const resources = resourcesOf(r.resources);
  const oldest = resources?.oldestRecordCursor ? dateFromCursor(resources.oldestRecordCursor) : undefined;
  const ended = r.result === "Completed" && r.finishedAt && oldest && resources!.rowsWritten > 0n ? r.finishedAt.getTime() - oldest.getTime() : undefined;
  return {
    runId: r.runId,
    database: r.database,
    exportName: r.name,
    runNumber: r.runNumber,
    result: r.result,
    fromCursor: cursorText(r.from),
    toCursor: cursorText(r.to),
    startedOn: timestampFromDate(r.startedAt),
    finishedOn: r.finishedAt && timestampFromDate(r.finishedAt),
    duration: r.finishedAt && durationFromMs(r.finishedAt.getTime() - r.startedAt.getTime()),
    resources,
    details: r.details,
    lateness: ended === undefined ? undefined : durationFromMs(Math.max(0, ended)),
  };
}

function failureOf(f: FailureToRecord | undefined) {
  if (!f) throw invalidArgument("failure is required");
  const failureKind = f.failureKind === "PartialFailure" ? "PartialFailure" : "Failure";
  return { operationId: f.operationId, name: f.name, failureKind, details: f.details, isPermanent: f.isPermanent } as const;
}
