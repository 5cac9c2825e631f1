import type { SpillwayConfig } from "@spillway/config";
import { CursorService } from "@spillway/proto";
import { CursorStore } from "./cursor-store.js";
import { ExportRunner } from "./export-runner.js";
import type { CursorPeers } from "./peer-clients.js";
import { RunScheduler } from "./run-scheduler.js";
import { cursorHandlers } from "./service.js";

export async function createCursorModule(config: SpillwayConfig, peers: CursorPeers, log: (line: string) => void) {
  const store = await CursorStore.open(config.dataDir);
  const runner = new ExportRunner(store, peers, config.dataDir);
  const scheduler = new RunScheduler(store, runner, peers, {
    tickMs: config.schedulerTickMs,
    maxConcurrentRuns: config.maxConcurrentRuns,
    log,
  });
  return {
    service: CursorService,
    handlers: cursorHandlers(store, runner, peers, config.dataDir),
    async start() {
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
