import type { SpillwayConfig } from "@spillway/config";
import { cursorAccess } from "./access.js";
import { CursorService } from "@spillway/proto";
import { CursorStore } from "./cursor-store.js";
import { ExportRunner } from "./export-runner.js";
import type { CursorPeers } from "./peer-clients.js";
import { RunScheduler } from "./run-scheduler.js";
import { cursorHandlers } from "./service.js";

export interface CursorModuleOptions {
  /** The clock of cursors, leases and failure ages; injectable so tests need not wait days. */
  now?: () => number;
}

export async function createCursorModule(config: SpillwayConfig, peers: CursorPeers, log: (line: string) => void, options: CursorModuleOptions = {}) {
  const store = await CursorStore.open(config.dataDir, options.now);
  const runner = new ExportRunner(store, peers, config.dataDir, { now: options.now, log });
  const scheduler = new RunScheduler(store, runner, peers, {
    tickMs: config.schedulerTickMs,
    maxConcurrentRuns: config.maxConcurrentRuns,
    now: options.now,
    log,
  });
  return {
    service: CursorService,
    handlers: cursorHandlers(store, runner, peers, config.dataDir),
    access: cursorAccess,
    async start() {
      // DuckDB lets one process open this store, so any lease in it belonged to a process that is gone.
      await store.releaseAllLeases();
      // Runs a dead process left open are failed: their checkpoint never moved.
      for (const run of await store.abandonedRuns()) {
        await store.failRun(run.exportId, run.runId, {
          operationId: run.runId,
          name: run.name,
          failureKind: "Failure",
          details: "the process running this export stopped before the run committed; the next run covers the same records",
          isPermanent: false,
        });
      }
      scheduler.start();
    },
    async stop() {
      scheduler.stop();
      await runner.drain();
      await store.close();
    },
  };
}
