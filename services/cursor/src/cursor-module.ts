import type { SpillwayConfig } from "@spillway/config";
import { CursorService, type RunExportNowResponse } from "@spillway/proto";
import { cursorAccess } from "./access.js";
import { CursorStore } from "./cursor-store.js";
import { RunRequestBoard } from "./run-request-board.js";
import { cursorHandlers } from "./service.js";

export interface CursorModuleOptions {
  /** The clock of cursors, leases and failure ages; injectable so tests need not wait days. */
  now?: () => number;
}

/** The commit log and the export ledger: a leaf, with no peers. */
export async function createCursorModule(config: SpillwayConfig, options: CursorModuleOptions = {}) {
  const store = await CursorStore.open(config.dataDir, options.now, config.metadataUrl);
  return {
    service: CursorService,
    handlers: cursorHandlers(store, new RunRequestBoard<RunExportNowResponse>()),
    access: cursorAccess,
    stop: () => store.close(),
  };
}
