import type { SpillwayConfig } from "@spillway/config";
import { cursorAccess } from "./access.js";
import { CursorService } from "@spillway/proto";
import { createLocalClient } from "@spillway/rpc";
import { CursorStore } from "./cursor-store.js";
import { ExportRunner } from "./export-runner.js";
import type { CursorPeers } from "./peer-clients.js";
import { cursorLedger } from "./run-ledger.js";
import { RunScheduler } from "./run-scheduler.js";
import { cursorHandlers } from "./service.js";

export interface CursorModuleOptions {
  /** The clock of cursors, leases and failure ages; injectable so tests need not wait days. */
  now?: () => number;
}

export async function createCursorModule(config: SpillwayConfig, peers: CursorPeers, log: (line: string) => void, options: CursorModuleOptions = {}) {
  const store = await CursorStore.open(config.dataDir, options.now);
  const handlers = cursorHandlers(store, () => runner, peers, config.dataDir);
  // Runs reach the ledger through the cursor service's client, as they will from a scheduler of their own.
  const ledger = cursorLedger(createLocalClient(CursorService, handlers));
  const runner: ExportRunner = new ExportRunner(ledger, peers, config.dataDir, { now: options.now, log });
  const scheduler = new RunScheduler(ledger, runner, peers, {
    tickMs: config.schedulerTickMs,
    maxConcurrentRuns: config.maxConcurrentRuns,
    now: options.now,
    log,
  });
  return {
    service: CursorService,
    handlers,
    access: cursorAccess,
    async start() {
      // Leases and Running runs a process that died left behind: released, and failed (their checkpoint never moved).
      await createLocalClient(CursorService, handlers).recoverAbandonedRuns({});
      scheduler.start();
    },
    async stop() {
      scheduler.stop();
      await runner.drain();
      await store.close();
    },
  };
}
