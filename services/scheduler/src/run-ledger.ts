import { timestampDate } from "@bufbuild/protobuf/wkt";
import { cursorText, parseCursor } from "@spillway/kusto";
import type { CursorService, ExportedArtifact } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";
import type { RunResourcesInit } from "./run-account.js";
import type { ManifestToWrite } from "./run-manifest.js";

export interface ArtifactRecord {
  timestamp: Date;
  externalTable: string;
  path: string;
  numRecords: bigint;
  sizeBytes: bigint;
  /** As the storage reported it when the file was uploaded, for the run's manifest; the ledger does not keep it. */
  md5?: string;
}

export interface FailureRecord {
  timestamp: Date;
  operationId: string;
  name: string;
  lastSuccessRun?: Date;
  failureKind: "Failure" | "PartialFailure";
  details: string;
  isPermanent: boolean;
}

export interface PendingArtifact {
  runId: string;
  path: string;
}

export interface StartedRun {
  runNumber: bigint;
  from: bigint;
  to: bigint;
  /** The run's start as the export's state records it; absent from a cursor service that does not say. */
  startedAt?: Date;
  /** Runs of the export that committed before this one. */
  completedRuns: bigint;
  /** Files failed attempts journaled and never committed: to delete before this run writes. */
  pending: PendingArtifact[];
}

export type FailureToRecord = Omit<FailureRecord, "timestamp" | "lastSuccessRun">;

/** The state of an export as scheduling needs it. */
export interface LedgerExportState {
  exportId: string;
  checkpointCursor: bigint;
  lastRunStart?: Date;
  /** Why the scheduler disabled the export on its own; '' when it did not. */
  systemDisabled: string;
  /** A run holds the export's lease. */
  isRunning: boolean;
  /** The commit log's last cursor as read with the state; undefined from a cursor service that does not say. */
  currentCursor?: bigint;
}

/**
 * The export ledger as run orchestration sees it (DESIGN "Scale-out": the cursor service
 * owns the ledger; the scheduler reaches it only through the cursor service's client).
 */
export interface RunLedger {
  /**
   * The range a run would take now (up to maxCursor), without opening one: its query may
   * start on it meanwhile, unless another owner than `owner` holds the export's lease.
   */
  runRange(exportId: string, name: string, owner: string, maxCursor?: bigint): Promise<{ from: bigint; to: bigint; leasedElsewhere: boolean }>;
  /** Opens a run under the export's lease; undefined when another owner holds it. */
  startRun(start: { exportId: string; name: string; runId: string; owner: string; leaseTtlMs: number; maxCursor?: bigint }): Promise<StartedRun | undefined>;
  renewLease(exportId: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(exportId: string, owner: string): Promise<void>;
  listExtents(database: string, tables: string[], after: bigint, upTo?: bigint): Promise<{ extents: Array<{ table: string; path: string; cursor: bigint; sizeBytes: bigint }> }>;
  /** Journals files about to be uploaded; with `owner`, only while it holds the export's lease (refused otherwise). */
  journalPending(exportId: string, runId: string, paths: string[], owner?: string): Promise<void>;
  pendingArtifacts(exportId: string): Promise<PendingArtifact[]>;
  clearPending(exportId: string, paths: string[]): Promise<void>;
  /** Commits the run with its artifacts and what it cost; `resources` is kept in its record. */
  commitRun(exportId: string, runId: string, externalTable: string, from: bigint, to: bigint, artifacts: Array<{ path: string; numRecords: bigint; sizeBytes: bigint }>, owner: string, resources?: RunResourcesInit, manifest?: ManifestToWrite): Promise<ArtifactRecord[]>;
  /** The export's committed artifacts (those kept: 14 days). */
  committedArtifacts(exportId: string): Promise<ArtifactRecord[]>;
  failRun(exportId: string, runId: string, failure: FailureToRecord, owner?: string, resources?: RunResourcesInit): Promise<void>;
  addFailure(exportId: string, failure: FailureToRecord): Promise<void>;
  failuresSinceLastSuccess(exportId: string): Promise<FailureRecord[]>;
  purgeExportState(exportId: string): Promise<void>;
  setSystemDisabled(exportId: string, reason: string): Promise<void>;
  getExportStates(exportIds: string[]): Promise<LedgerExportState[]>;
}

const cursorOf = (text: string) => parseCursor(text, "cursor");

const artifactOf = (a: ExportedArtifact): ArtifactRecord => ({
  timestamp: a.timestamp ? timestampDate(a.timestamp) : new Date(0),
  externalTable: a.externalTableName,
  path: a.path,
  numRecords: a.numRecords,
  sizeBytes: a.sizeInBytes,
});

/** The ledger behind a CursorService client, in this process or over gRPC. */
export function cursorLedger(cursor: ServiceClient<typeof CursorService>): RunLedger {
  const failureOf = (f: { timestamp?: Parameters<typeof timestampDate>[0]; operationId: string; name: string; lastSuccessRun?: Parameters<typeof timestampDate>[0]; failureKind: string; details: string; isPermanent: boolean }): FailureRecord => ({
    timestamp: f.timestamp ? timestampDate(f.timestamp) : new Date(0),
    operationId: f.operationId,
    name: f.name,
    lastSuccessRun: f.lastSuccessRun && timestampDate(f.lastSuccessRun),
    failureKind: f.failureKind as FailureRecord["failureKind"],
    details: f.details,
    isPermanent: f.isPermanent,
  });
  return {
    async runRange(exportId, name, owner, maxCursor) {
      const r = await cursor.getRunRange({ exportId, name, owner, maxCursor: maxCursor === undefined ? "" : maxCursor.toString() });
      return { from: cursorOf(r.fromCursor), to: cursorOf(r.toCursor), leasedElsewhere: r.leasedElsewhere };
    },
    async startRun(start) {
      const r = await cursor.startRun({ ...start, leaseTtlMs: BigInt(start.leaseTtlMs), maxCursor: start.maxCursor === undefined ? "" : start.maxCursor.toString() });
      if (!r.started) return undefined;
      return { runNumber: r.runNumber, from: cursorOf(r.fromCursor), to: cursorOf(r.toCursor), startedAt: r.startedAt && timestampDate(r.startedAt), completedRuns: r.completedRuns, pending: r.pending.map((p) => ({ runId: p.runId, path: p.path })) };
    },
    renewLease: async (exportId, owner, ttlMs) => (await cursor.renewLease({ exportId, owner, leaseTtlMs: BigInt(ttlMs) })).held,
    releaseLease: async (exportId, owner) => void (await cursor.releaseLease({ exportId, owner })),
    async listExtents(database, tables, after, upTo) {
      const r = await cursor.listExtents({ database, tables, afterCursor: cursorText(after), upToCursor: upTo === undefined ? "" : upTo.toString() });
      return { extents: r.extents.map((e) => ({ table: e.table, path: e.path, cursor: cursorOf(e.cursor), sizeBytes: e.sizeBytes })) };
    },
    journalPending: async (exportId, runId, paths, owner) => void (await cursor.journalPending({ exportId, runId, paths, owner })),
    pendingArtifacts: async (exportId) => (await cursor.listPendingArtifacts({ exportId })).pending.map((p) => ({ runId: p.runId, path: p.path })),
    clearPending: async (exportId, paths) => void (await cursor.clearPending({ exportId, paths })),
    async commitRun(exportId, runId, externalTable, from, to, artifacts, owner, resources, manifest) {
      const r = await cursor.commitRun({
        exportId,
        runId,
        externalTable,
        fromCursor: from.toString(),
        toCursor: to.toString(),
        artifacts: artifacts.map((a) => ({ path: a.path, numRecords: a.numRecords, sizeInBytes: a.sizeBytes })),
        owner,
        resources,
        manifest,
      });
      return r.artifacts.map(artifactOf);
    },
    async committedArtifacts(exportId) {
      return (await cursor.listArtifacts({ exportId })).artifacts.map(artifactOf);
    },
    failRun: async (exportId, runId, failure, owner, resources) => void (await cursor.failRun({ exportId, runId, failure, owner: owner ?? "", resources })),
    addFailure: async (exportId, failure) => void (await cursor.addFailure({ exportId, failure })),
    failuresSinceLastSuccess: async (exportId) => (await cursor.listFailures({ exportId, sinceLastSuccess: true })).failures.map(failureOf),
    purgeExportState: async (exportId) => void (await cursor.purgeExportState({ exportId })),
    setSystemDisabled: async (exportId, reason) => void (await cursor.setSystemDisabled({ exportId, reason })),
    async getExportStates(exportIds) {
      const { states } = await cursor.getExportStates({ exportIds });
      return states.map((s) => ({
        exportId: s.exportId,
        checkpointCursor: s.checkpointCursor ? cursorOf(s.checkpointCursor) : 0n,
        lastRunStart: s.lastRunStart && timestampDate(s.lastRunStart),
        systemDisabled: s.systemDisabled,
        isRunning: s.isRunning,
        currentCursor: s.currentCursor ? cursorOf(s.currentCursor) : undefined,
      }));
    },
  };
}
