import type { SpillwayConfig } from "@spillway/config";
import { errorMessage } from "@spillway/errors";
import { withRetry } from "@spillway/rpc";
import { ExportRunner } from "./export-runner.js";
import type { SchedulerPeers } from "./peer-clients.js";
import { cursorLedger } from "./run-ledger.js";
import { RunRequestListener } from "./run-request-listener.js";
import { RunScheduler } from "./run-scheduler.js";

export interface SchedulerModuleOptions {
  /** The clock of leases, intervals and failure ages; injectable so tests need not wait days. */
  now?: () => number;
}

/**
 * Due exports and run orchestration (DESIGN "Scale-out"): depends on catalog, cursor,
 * query and writer, and none of them on it, so it serves no RPC of its own.
 */
export async function createSchedulerModule(config: SpillwayConfig, peers: SchedulerPeers, log: (line: string) => void, options: SchedulerModuleOptions = {}) {
  const ledger = cursorLedger(peers.cursor);
  const runner = new ExportRunner(ledger, peers, { now: options.now, log, leaseTtlMs: config.runLeaseMs });
  const scheduler = new RunScheduler(ledger, runner, peers, {
    tickMs: config.schedulerTickMs,
    maxConcurrentRuns: config.maxConcurrentRuns,
    now: options.now,
    log,
  });
  const listener = new RunRequestListener(runner, peers, log);
  let stopped = false;
  let starting: Promise<void> | undefined;
  return {
    async start() {
      // Leases and Running runs a scheduler that died left behind are released and failed
      // (their checkpoint never moved) before any run starts: recovery would take a new run's lease too.
      const recover = () => peers.cursor.recoverAbandonedRuns({});
      const begin = () => {
        scheduler.start();
        listener.start();
      };
      try {
        await recover();
        begin();
      } catch {
        // The cursor service is another process, not up yet: keep trying in the background.
        starting = withRetry(recover, { attempts: 1000, baseDelayMs: 100, maxDelayMs: 2000, shouldRetry: () => !stopped })
          .then(() => (stopped ? undefined : begin()))
          .catch((err) => log(`scheduler: could not start: ${errorMessage(err)}`));
      }
    },
    async stop() {
      stopped = true;
      await starting;
      scheduler.stop();
      await listener.stop();
      await runner.drain();
    },
  };
}
