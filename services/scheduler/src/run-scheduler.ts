import { durationMs } from "@spillway/kusto";
import type { ExportSpec } from "@spillway/proto";
import type { RunLedger } from "./run-ledger.js";
import type { ExportRunner } from "./export-runner.js";
import type { SchedulerPeers } from "./peer-clients.js";

/** What the scheduler needs of the runner. */
export type ScheduledRunner = Pick<ExportRunner, "run" | "isRunning" | "runningCount">;

export interface SchedulerOptions {
  tickMs: number;
  maxConcurrentRuns: number;
  now?: () => number;
  log?: (message: string) => void;
}

/**
 * Starts due exports: every tick, each enabled export whose last run started at least
 * intervalBetweenRuns ago, the most lagging first, within the capacity limit. A run
 * that ends looks again at once, so a free slot never waits for the next tick while
 * exports are due.
 */
export class RunScheduler {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** A tick was asked for while one was in progress: run another when it ends. */
  private tickAgain = false;
  private stopped = false;
  private readonly now: () => number;
  private waiting = 0;

  constructor(
    private readonly store: Pick<RunLedger, "getExportStates">,
    private readonly runner: ScheduledRunner,
    private readonly peers: { catalog: Pick<SchedulerPeers["catalog"], "listExportSpecs"> },
    private readonly options: SchedulerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.tickMs);
    this.timer.unref();
  }

  /** Exports due at the last look that found no room under the capacity limit. */
  get waitingCount(): number {
    return this.waiting;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.tickAgain = false;
        await this.launchDue();
      } while (this.tickAgain && !this.stopped);
    } finally {
      this.ticking = false;
    }
  }

  private async launchDue(): Promise<void> {
    try {
      const { specs } = await this.peers.catalog.listExportSpecs({});
      const enabled = specs.filter((s) => !s.isDisabled && !this.runner.isRunning(s.id));
      const states = new Map((await this.store.getExportStates(enabled.map((s) => s.id))).map((s) => [s.exportId, s]));
      const due = enabled
        .filter((s) => {
          const state = states.get(s.id);
          if (state?.systemDisabled) return false;
          const last = state?.lastRunStart;
          return !last || this.now() - last.getTime() >= durationMs(s.intervalBetweenRuns);
        })
        // When exports lag, the one furthest behind runs first (SPEC §3).
        .sort((a, b) => compareBigint(states.get(a.id)?.checkpointCursor ?? 0n, states.get(b.id)?.checkpointCursor ?? 0n));
      const room = Math.max(0, this.options.maxConcurrentRuns - this.runner.runningCount);
      this.waiting = Math.max(0, due.length - room);
      if (this.stopped) return;
      for (const spec of due.slice(0, room)) this.launch(spec);
    } catch (err) {
      this.options.log?.(`scheduler: ${(err as Error).message}`);
    }
  }

  private launch(spec: ExportSpec): void {
    this.runner.run(spec).then(
      // A run that happened moved the export's last start: looking again at once cannot relaunch it.
      () => {
        if (!this.stopped) void this.tick();
      },
      // One that could not start (lease held, export gone) waits for the next tick, not a busy loop.
      (err) => this.options.log?.(`run of ${spec.name} failed: ${(err as Error).message}`),
    );
  }
}

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
