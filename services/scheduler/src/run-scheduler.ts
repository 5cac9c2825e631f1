import { durationMs } from "@spillway/kusto";
import type { ExportSpec } from "@spillway/proto";
import type { LedgerExportState, RunLedger } from "./run-ledger.js";
import type { ExportRunner, RunOutcome } from "./export-runner.js";
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
 * exports are due; and a look is made as the next export's interval passes, so a due
 * export does not wait for the next tick either.
 */
export class RunScheduler {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** A tick was asked for while one was in progress: run another when it ends. */
  private tickAgain = false;
  private stopped = false;
  private readonly now: () => number;
  private waiting = 0;
  /**
   * The catalog's listing of every export, as of `at`: read again on every timed tick, and
   * reused by the looks a run's end makes within a tick of it (with a thousand exports a
   * listing is tens of milliseconds, and a busy scheduler ends many runs a second). A run
   * starts from its export's own spec, read again by name.
   */
  private listing?: { at: number; specs: ExportSpec[] };
  /** Exports being launched: their spec is being read again, and the runner has not taken them yet. */
  private readonly launching = new Set<string>();
  /**
   * Each export's last run start as last read (ms since the epoch). A start only moves forward,
   * so an export whose interval has not passed since this one cannot be due, and a look reads
   * the state of the others only: reading all 200 (or 1,000) states on every run's end was a
   * large part of a busy scheduler's work (bench #6). Starts come from each node's own clock:
   * one that lags another's by more than an interval could hold a run back by that much.
   */
  private readonly lastStarts = new Map<string, number>();
  /** Each export's state as last read: the order the looks a run's end makes go by (see launchDue). */
  private readonly known = new Map<string, LedgerExportState>();
  /** The next look reads the state of every export that may be due: set by each timed tick. */
  private readAll = true;
  /**
   * A look at the moment the next export's interval passes (`dueLookAt`, ms since the epoch).
   * Looking only at timed ticks, an export run from one was due again just after the tick ten
   * intervals on, its start being a few milliseconds after its launch: it waited for the next
   * tick, nearly a whole one, every time, and bench #6's runs came in waves of those.
   */
  private dueLook: NodeJS.Timeout | undefined;
  private dueLookAt = Infinity;
  /**
   * The starts of the runs this node ran (launched here, or asked for and run by its runner:
   * see ranAsked), as long as they are each export's last: the looks set for intervals' ends
   * go by these only. On a shared store every node's
   * scheduler would otherwise look for the same export at the same moment, and all but one
   * be refused its lease; an export another node ran waits for a timed tick here, as before.
   */
  private readonly ownStarts = new Map<string, number>();

  constructor(
    private readonly store: Pick<RunLedger, "getExportStates">,
    private readonly runner: ScheduledRunner,
    private readonly peers: { catalog: Pick<SchedulerPeers["catalog"], "listExportSpecs"> },
    private readonly options: SchedulerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(true), this.options.tickMs);
    this.timer.unref();
  }

  /** Exports due at the last look that found no room under the capacity limit. */
  get waitingCount(): number {
    return this.waiting;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.dueLook);
  }

  /** Looks for due exports; `fresh` reads the catalog's listing again even if it was read within a tick. */
  async tick(fresh = true): Promise<void> {
    if (fresh) {
      this.listing = undefined;
      this.readAll = true;
    }
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
      if (!this.listing || this.now() - this.listing.at >= this.options.tickMs) {
        const at = this.now();
        this.listing = { at, specs: (await this.peers.catalog.listExportSpecs({})).specs };
        const listed = new Set(this.listing.specs.map((s) => s.id));
        for (const id of this.lastStarts.keys()) if (!listed.has(id)) this.lastStarts.delete(id);
        for (const id of this.ownStarts.keys()) if (!listed.has(id)) this.ownStarts.delete(id);
        for (const id of this.known.keys()) if (!listed.has(id)) this.known.delete(id);
      }
      const lookAt = this.now();
      const enabled = this.listing.specs.filter((s) => !s.isDisabled && !this.runner.isRunning(s.id) && !this.launching.has(s.id));
      const mayBeDue = enabled.filter((s) => {
        const start = this.lastStarts.get(s.id);
        return start === undefined || intervalPassed(s, start, lookAt);
      });
      const room = this.freeSlots();
      // A timed tick reads every state that may be due. The looks runs' ends make in between
      // read only those that would take the free slots, furthest behind first as last read:
      // with 200 exports behind, reading all their states on each run's end was as much of the
      // stores' work as a run's query (bench #6). Those read stand or fall by what they read.
      const readAll = this.readAll;
      this.readAll = false;
      // Between timed ticks, those last read disabled or held by another's lease wait for the next one.
      const eligible = readAll ? mayBeDue : mayBeDue.filter((s) => !heldBack(this.known.get(s.id)));
      const candidates = readAll ? eligible : this.furthestBehind(eligible, this.known).slice(0, room);
      let read: LedgerExportState[];
      try {
        read = candidates.length ? await this.store.getExportStates(candidates.map((s) => s.id)) : [];
      } catch (err) {
        // The next look reads them all again, not only the next timed tick.
        if (readAll) this.readAll = true;
        throw err;
      }
      for (const state of read) {
        this.known.set(state.exportId, state);
        if (state.lastRunStart) this.lastStarts.set(state.exportId, state.lastRunStart.getTime());
        // Run since by another scheduler, or asked for on another node: not ours to look for; a timed tick finds it.
        if ((state.lastRunStart?.getTime() ?? -Infinity) > (this.ownStarts.get(state.exportId) ?? Infinity)) this.ownStarts.delete(state.exportId);
      }
      const states = new Map(read.map((s) => [s.exportId, s]));
      const due = this.furthestBehind(
        candidates.filter((s) => {
          const state = states.get(s.id);
          if (heldBack(state)) return false;
          // A run asked for (RunContinuousExportNow) may have started it while the states were read.
          if (this.runner.isRunning(s.id) || this.launching.has(s.id)) return false;
          const last = state?.lastRunStart;
          return !last || intervalPassed(s, last.getTime(), this.now());
        }),
        states,
      );
      // Runs asked for (RunContinuousExportNow) may have started while the states were read: room as it is now.
      const toLaunch = due.slice(0, this.freeSlots());
      // Due exports waiting for room: as the last look that read them all found them, less those
      // launched since and those found not due after all (run elsewhere); a look at a run's end
      // does not know about the others it did not read. The next timed tick counts them again.
      this.waiting = readAll ? due.length - toLaunch.length : Math.max(0, this.waiting - toLaunch.length - (candidates.length - due.length));
      if (this.stopped) return;
      for (const spec of toLaunch) this.launch(spec, states.get(spec.id));
      // Some read were not due after all (run elsewhere, or disabled): the next in line may take their slots.
      const unread = eligible.length - candidates.length;
      if (!readAll && due.length < candidates.length && unread > 0) this.tickAgain = true;
    } catch (err) {
      this.options.log?.(`scheduler: ${(err as Error).message}`);
    }
    this.lookWhenNextDue();
  }

  /**
   * Sets a look for the moment the next export's interval passes, by the starts of this node's
   * runs (ownStarts), when that is sooner than the next timed tick and no look is set for
   * sooner. Exports already due wait for room, which a run's end makes and looks at; those held
   * back (see heldBack) wait for a timed tick.
   */
  private lookWhenNextDue(): void {
    if (this.stopped || !this.listing) return;
    const now = this.now();
    let next = Infinity;
    for (const s of this.listing.specs) {
      const start = this.ownStarts.get(s.id);
      if (start === undefined || s.isDisabled || this.runner.isRunning(s.id) || this.launching.has(s.id) || heldBack(this.known.get(s.id))) continue;
      const at = dueAt(s, start);
      if (at > now && at < next) next = at;
    }
    // Beyond the next timed tick (or a timer's reach, 24.8 days), that tick sets it.
    if (next - now >= this.options.tickMs || next >= this.dueLookAt) return;
    clearTimeout(this.dueLook);
    this.dueLookAt = next;
    this.dueLook = setTimeout(() => {
      this.dueLook = undefined;
      this.dueLookAt = Infinity;
      void this.tick(false);
    }, next - now);
    this.dueLook.unref();
  }

  /** Runs that may start now under the capacity limit. */
  private freeSlots(): number {
    return Math.max(0, this.options.maxConcurrentRuns - this.runner.runningCount - this.launching.size);
  }

  /** When exports lag, the one furthest behind runs first (SPEC §3): by checkpoint, as `states` has it. */
  private furthestBehind(specs: ExportSpec[], states: ReadonlyMap<string, LedgerExportState>): ExportSpec[] {
    return [...specs].sort((a, b) => compareBigint(states.get(a.id)?.checkpointCursor ?? 0n, states.get(b.id)?.checkpointCursor ?? 0n));
  }

  private launch(listed: ExportSpec, seen?: LedgerExportState): void {
    this.launching.add(listed.id);
    let launched = false;
    // Once: the runner has the export, or it is not to run.
    const done = () => {
      if (!launched) this.launching.delete(listed.id);
      launched = true;
    };
    const launchedAt = this.now();
    // Not to run after all: its slot goes to the next due export, and the listing takes `spec`
    // as it now is (or drops it: gone or disabled).
    const notLaunched = (spec?: ExportSpec) => {
      if (this.listing) {
        const specs = this.listing.specs.flatMap((s) => (s.id !== listed.id ? [s] : spec ? [spec] : []));
        this.listing = { ...this.listing, specs };
      }
      done();
      if (!this.stopped) void this.tick(false);
      return undefined;
    };
    const started = (async () => {
      try {
        // As the export is now: the listing may be up to a tick old, and a run of an altered
        // definition would fail at its commit.
        const { specs } = await this.peers.catalog.listExportSpecs({ database: listed.database, name: listed.name });
        const spec = specs[0];
        // Dropped, made again or disabled since the listing.
        if (!spec || spec.id !== listed.id || spec.isDisabled || this.stopped) return notLaunched();
        // A run asked for may have started it while its spec was read: the runner would queue this one behind it.
        if (this.runner.isRunning(spec.id)) return notLaunched(spec);
        // Its interval lengthened since the listing, and has not passed: not due after all.
        const lastStart = seen?.lastRunStart?.getTime();
        if (lastStart !== undefined && !intervalPassed(spec, lastStart, this.now())) return notLaunched(spec);
        // The runner counts the export as running from this call on (ExportRunner.run).
        const running = this.runner.run(spec, seen);
        done();
        return await running;
      } finally {
        done();
      }
    })();
    started.then(
      (outcome) => outcome && this.ran(listed.id, outcome, launchedAt),
      // One that could not start (lease held, export gone) waits for the next tick, not a busy loop.
      (err) => this.options.log?.(`run of ${listed.name} failed: ${(err as Error).message}`),
    );
  }

  /**
   * A run someone asked for (RunContinuousExportNow) that this node's runner ran: its export's
   * next interval runs from that start, and a look is set for its end as for a run launched here.
   */
  ranAsked(spec: ExportSpec, outcome: RunOutcome): void {
    if (outcome.startedAt) this.ran(spec.id, outcome, outcome.startedAt.getTime());
  }

  /**
   * After a run of this scheduler's node: a run that happened moved its export's last start,
   * so looking again at once cannot relaunch it.
   */
  private ran(exportId: string, outcome: RunOutcome, launchedAt: number): void {
    // Its interval runs from its start as the ledger recorded it (or, from a ledger that does
    // not say, its launch, which is no later): the look its end makes need not read its state
    // again to know it is not due, and the look set for when it is due comes on time (only by
    // a start the ledger recorded: one earlier than that would look too soon).
    const startedAt = outcome.startedAt?.getTime() ?? launchedAt;
    if ((this.lastStarts.get(exportId) ?? -Infinity) < startedAt) this.lastStarts.set(exportId, startedAt);
    if (outcome.startedAt && this.lastStarts.get(exportId) === startedAt) this.ownStarts.set(exportId, startedAt);
    // Where its checkpoint now is: as read before the run, it would put the export ahead of
    // those waiting when it is next due, though it is not as far behind as they are. Its lease
    // went with its end: a read that overlapped the run must not hold it back (heldBack).
    const known = this.known.get(exportId);
    if (known) this.known.set(exportId, { ...known, isRunning: false, checkpointCursor: outcome.result === "Completed" && outcome.to > known.checkpointCursor ? outcome.to : known.checkpointCursor });
    if (!this.stopped) void this.tick(false);
  }
}

/**
 * An export that is not to run whatever its interval: disabled by the scheduler, or its lease
 * held (by another scheduler's run, or one a dead node left until it expires; StartRun would refuse it).
 */
function heldBack(state: LedgerExportState | undefined): boolean {
  return Boolean(state?.systemDisabled || state?.isRunning);
}

/** When `spec` is due again after a run that started at `startMs` (ms since the epoch). */
function dueAt(spec: ExportSpec, startMs: number): number {
  return startMs + durationMs(spec.intervalBetweenRuns);
}

/** Whether `spec`'s interval between runs has passed at `now` since a run started at `startMs`. */
function intervalPassed(spec: ExportSpec, startMs: number, now: number): boolean {
  return now >= dueAt(spec, startMs);
}

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
