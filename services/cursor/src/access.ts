import type { CursorService } from "@spillway/proto";
import type { AccessTable } from "@spillway/rpc";

/** Who may call each CursorService RPC (SPEC §7); enforced by the rpc server. */
export const cursorAccess: AccessTable<typeof CursorService> = {
  getCurrentCursor: { need: "databaseViewer" },
  commitExtent: "internal",
  listExtents: "internal",
  dropTableExtents: "internal",
  listDroppedExtents: "internal",
  forgetDroppedExtents: "internal",
  initExportState: "internal",
  getExportStates: "internal",
  listArtifacts: "internal",
  listFailures: "internal",
  runExportNow: "internal",
  watchRunRequests: "internal",
  completeRunRequest: "internal",
  startRun: "internal",
  renewLease: "internal",
  releaseLease: "internal",
  journalPending: "internal",
  listPendingArtifacts: "internal",
  clearPending: "internal",
  commitRun: "internal",
  failRun: "internal",
  addFailure: "internal",
  purgeExportState: "internal",
  recoverAbandonedRuns: "internal",
  setSystemDisabled: "internal",
  heartbeat: "internal",
  listNodes: "internal",
  getExportBacklogs: "internal",
};
