import type { SpillwayConfig } from "@spillway/config";
import { CursorService, type RunExportNowResponse } from "@spillway/proto";
import { cursorAccess } from "./access.js";
import { CursorStore } from "./cursor-store.js";
import { RunRequestBoard } from "./run-request-board.js";
import { cursorHandlers } from "./service.js";

export interface CursorModuleOptions {
  /** The clock of cursors, leases and failure ages; injectable so tests need not wait days. */
  now?: () => number;
  log?: (line: string) => void;
}

const PRUNE_EVERY_MS = 3_600_000;

/**
 * The commit log and the export ledger: a leaf, with no peers. It forgets the runs,
 * artifacts and failures past their retention (14 days) at start and every hour; on a
 * shared store every node does, and a second pass finds nothing to delete.
 */
export async function createCursorModule(config: SpillwayConfig, options: CursorModuleOptions = {}) {
  const store = await CursorStore.open(config.dataDir, options.now, config.metadataUrl, config.droppedExtentGraceMs);
  let pruning: Promise<unknown> = Promise.resolve();
  const prune = () => {
    // A failed pass is tried again by the next one: the history is only kept longer meanwhile.
    pruning = store.pruneHistory().catch((err: Error) => options.log?.(`spillway: could not forget runs, artifacts and failures past 14 days (${err.message}); trying again in an hour`));
  };
  prune();
  const timer = setInterval(prune, PRUNE_EVERY_MS);
  timer.unref();
  return {
    service: CursorService,
    handlers: cursorHandlers(store, new RunRequestBoard<RunExportNowResponse>()),
    access: cursorAccess,
    async stop() {
      clearInterval(timer);
      await pruning;
      await store.close();
    },
  };
}
