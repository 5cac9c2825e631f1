import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ExportSpecSchema, type ExportSpec } from "@spillway/proto";
import type { SpillwayConfig } from "@spillway/config";
import { CursorService } from "@spillway/proto";
import { createLocalClient, type ServiceClient } from "@spillway/rpc";
import { createCursorModule } from "../../cursor/src/index.js";
import type { RunOutcome } from "./export-runner.js";
import { cursorLedger, type LedgerExportState, type RunLedger } from "./run-ledger.js";
import { RunScheduler, type ScheduledRunner } from "./run-scheduler.js";
import { waitFor } from "../../../test/support/free-port.js";

let dir: string;
/** The real export ledger, reached through the cursor service's client as the scheduler does. */
let cursorModule: Awaited<ReturnType<typeof createCursorModule>>;
let cursor: ServiceClient<typeof CursorService>;
let store: RunLedger;

/** A ledger whose clock the test sets. */
async function openLedger(folder: string, now?: () => number) {
  const module = await createCursorModule({ dataDir: folder } as SpillwayConfig, { now });
  const client = createLocalClient(CursorService, module.handlers);
  return { module, cursor: client, ledger: cursorLedger(client) };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spillway-scheduler-"));
  ({ module: cursorModule, cursor, ledger: store } = await openLedger(dir));
});

afterEach(async () => {
  await cursorModule.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Records a run's start in the ledger, as a real run does, and ends it at once; the start as the ledger recorded it. */
async function recordRunStart(ledger: RunLedger, client: ServiceClient<typeof CursorService>, s: ExportSpec): Promise<Date | undefined> {
  await client.initExportState({ exportId: s.id, database: s.database, name: s.name });
  const started = await ledger.startRun({ exportId: s.id, name: s.name, runId: randomUUID(), owner: "test", leaseTtlMs: 60_000 });
  await ledger.releaseLease(s.id, "test");
  return started?.startedAt;
}

const spec = (name: string, intervalMs = 60_000): ExportSpec =>
  create(ExportSpecSchema, { id: `id-${name}`, database: "db", name, intervalBetweenRuns: durationFromMs(intervalMs) });

/** Records each run in the real store (as the real runner does) and takes `runMs`. */
class RecordingRunner implements ScheduledRunner {
  readonly started: string[] = [];
  /** The state each run was handed, as the scheduler read it. */
  readonly seen: Array<LedgerExportState | undefined> = [];
  maxInFlight = 0;
  /** How many runs were in flight as each one started, itself included. */
  readonly inFlightAtStart: number[] = [];
  private readonly inFlight = new Set<string>();

  /**
   * `runMs` a run, or as long as `slow` says for some exports; `record` notes its start (in the
   * suite's store unless given) and may say when the ledger recorded it, as the real runner's outcome does.
   */
  constructor(
    private readonly runMs: number,
    private readonly slow: Record<string, number> = {},
    private readonly record: (s: ExportSpec) => Promise<Date | undefined | void> = (s) => recordRunStart(store, cursor, s),
  ) {}

  isRunning(exportId: string): boolean {
    return this.inFlight.has(exportId);
  }

  get runningCount(): number {
    return this.inFlight.size;
  }

  async run(s: ExportSpec, seen?: LedgerExportState): Promise<RunOutcome> {
    this.seen.push(seen);
    this.inFlight.add(s.id);
    this.inFlightAtStart.push(this.inFlight.size);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    this.started.push(s.name);
    try {
      const startedAt = (await this.record(s)) ?? undefined;
      await new Promise((r) => setTimeout(r, this.slow[s.name] ?? this.runMs));
      return { runId: "", result: "Completed", from: 0n, to: 0n, artifacts: [], details: "", startedAt };
    } finally {
      this.inFlight.delete(s.id);
    }
  }
}

/** A catalog listing `specs`, all of them or one by name, counting the listings of all. */
function catalogOf(specs: ExportSpec[], counter = { full: 0 }) {
  return {
    counter,
    catalog: {
      listExportSpecs: async (req: { name?: string }) => {
        if (!req.name) counter.full++;
        return { specs: specs.filter((s) => !req.name || s.name === req.name) } as never;
      },
    },
  };
}

/** Waits (up to `ms`, 5 s unless given) until `condition` holds. */
const until = (condition: () => boolean, ms = 5_000) => waitFor("the scheduler", async () => (condition() ? true : undefined), ms);

describe("RunScheduler", () => {
  it("fills a freed slot at once instead of waiting for the next tick", async () => {
    const specs = Array.from({ length: 10 }, (_, i) => spec(`E${i}`));
    const runner = new RecordingRunner(20);
    // The timer is never started: only the first tick and the runs' own completions drive it.
    const { catalog, counter } = catalogOf(specs);
    const scheduler = new RunScheduler(store, runner, { catalog }, { tickMs: 3_600_000, maxConcurrentRuns: 3 });
    await scheduler.tick();
    await until(() => runner.started.length === 10 && runner.runningCount === 0);
    scheduler.stop();
    expect(new Set(runner.started).size).toBe(10);
    expect(runner.maxInFlight).toBe(3);

    // The looks the runs' ends made, within a tick of the first, used its listing; each run read its own spec.
    expect(counter.full).toBe(1);
  });

  it("looks as an export's interval passes, without waiting for a tick, and reads its state once a run", async () => {
    const every = spec("Every", 300);
    let reads = 0;
    const counting: Pick<RunLedger, "getExportStates"> = { getExportStates: async (ids) => (reads++, store.getExportStates(ids)) };
    const runner = new RecordingRunner(0, {}, async (s) => {
      // A run opens a while after its launch (its spec read again, its range): its interval runs from the opening.
      await new Promise((r) => setTimeout(r, 50));
      return recordRunStart(store, cursor, s);
    });
    // No timed tick comes after the first: only the look set for each interval's end can run it again.
    const scheduler = new RunScheduler(counting, runner, catalogOf([every]), { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    // Three intervals of 300 ms take about a second; on a machine loaded by other suites, CI
    // once took over 5 s. A look that never came would wait for the hour's tick.
    await until(() => runner.started.length >= 3, 30_000);
    scheduler.stop();
    await until(() => runner.runningCount === 0);
    // The look comes when the recorded start says, not before: one read of its state a run (a look may be reading one more).
    expect(reads).toBeLessThanOrEqual(runner.started.length + 1);
  });

  it("leaves an export another scheduler ran since to the timed tick, not to a look at its interval's end", async () => {
    const every = spec("Every", 300);
    let first = true;
    const runner = new RecordingRunner(0, {}, async (s) => {
      const own = await recordRunStart(store, cursor, s);
      // Another node's scheduler runs it right after: every node looking for it as its interval
      // ends would all look at once, and all but one be refused its lease.
      if (first) {
        first = false;
        await new Promise((r) => setTimeout(r, 5));
        await recordRunStart(store, cursor, s);
      }
      return own;
    });
    const scheduler = new RunScheduler(store, runner, catalogOf([every]), { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    await until(() => runner.started.length === 1 && runner.runningCount === 0);
    await new Promise((r) => setTimeout(r, 800));
    scheduler.stop();
    expect(runner.started).toEqual(["Every"]);
  });

  it("looks as the interval of a run asked for on its node passes, without waiting for a tick", async () => {
    const every = spec("Every", 300);
    const runner = new RecordingRunner(0);
    const scheduler = new RunScheduler(store, runner, catalogOf([every]), { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    // RunContinuousExportNow ran it just before the scheduler's first look: that look finds it not due.
    const startedAt = await recordRunStart(store, cursor, every);
    await scheduler.tick();
    expect(runner.started).toEqual([]);
    scheduler.ranAsked(every, { runId: "", result: "Completed", from: 0n, to: 0n, artifacts: [], details: "", startedAt });
    // No timed tick comes: only a look set for the end of the asked run's interval can run it.
    await until(() => runner.started.length === 1);
    scheduler.stop();
    await until(() => runner.runningCount === 0);
    const [state] = await store.getExportStates([every.id]);
    expect(state!.lastRunStart!.getTime() - startedAt!.getTime()).toBeGreaterThanOrEqual(300);
  });

  it("sets that look too when its last read found the asked run still holding the export's lease", async () => {
    const every = spec("Every", 300);
    const runner = new RecordingRunner(0);
    const scheduler = new RunScheduler(store, runner, catalogOf([every]), { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await cursor.initExportState({ exportId: every.id, database: every.database, name: every.name });
    const asked = await store.startRun({ exportId: every.id, name: every.name, runId: randomUUID(), owner: "asked", leaseTtlMs: 60_000 });
    // The scheduler reads the state while the asked run holds the lease: held back.
    await scheduler.tick();
    await store.releaseLease(every.id, "asked");
    scheduler.ranAsked(every, { runId: "", result: "Completed", from: 0n, to: 0n, artifacts: [], details: "", startedAt: asked!.startedAt });
    await until(() => runner.started.length === 1);
    scheduler.stop();
    await until(() => runner.runningCount === 0);
  });

  it("does not launch an export whose interval was lengthened since the listing, and has not passed", async () => {
    const listed = spec("Stretched", 1);
    const now = spec("Stretched", 3_600_000);
    await recordRunStart(store, cursor, listed);
    await new Promise((r) => setTimeout(r, 5));
    const runner = new RecordingRunner(0);
    // The listing is older than the export's definition, read again by name at launch.
    const catalog = { listExportSpecs: async (req: { name?: string }) => ({ specs: [req.name ? now : listed] }) as never };
    const scheduler = new RunScheduler(store, runner, { catalog }, { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    await new Promise((r) => setTimeout(r, 300));
    scheduler.stop();
    expect(runner.started).toEqual([]);
  });

  it("sets no look for an interval that ends after the next timed tick, however far off", async () => {
    // Thirty days: beyond what a timer can wait (24.8 days), which Node would make a millisecond.
    const monthly = spec("Monthly", 30 * 86_400_000);
    let looks = 0;
    const now = () => (looks++, Date.now());
    const runner = new RecordingRunner(0);
    const scheduler = new RunScheduler(store, runner, catalogOf([monthly]), { tickMs: 3_600_000, maxConcurrentRuns: 1, now });
    await scheduler.tick();
    await until(() => runner.started.length === 1 && runner.runningCount === 0);
    const after = looks;
    await new Promise((r) => setTimeout(r, 300));
    scheduler.stop();
    // A look set too soon would look again every millisecond, reading the clock each time.
    expect(looks - after).toBeLessThan(10);
    expect(runner.started).toEqual(["Monthly"]);
  });

  it("hands a run the state it read of the export, with the commit log's cursor, for its range", async () => {
    // Its state starts its interval: one of a millisecond has passed by the look.
    const due = spec("Due", 1);
    await cursor.initExportState({ exportId: due.id, database: due.database, name: due.name });
    const { cursor: committed } = await cursor.commitExtent({ database: "db", table: "T", extentId: "e1", path: "e1.parquet", rowCount: 1n, sizeBytes: 1n });
    const runner = new RecordingRunner(0);
    const scheduler = new RunScheduler(store, runner, catalogOf([due]), { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    // With an interval of a millisecond it runs again and again: the first run is the one looked at.
    await until(() => runner.started.length >= 1);
    scheduler.stop();
    await until(() => runner.runningCount === 0);
    expect(runner.seen[0]).toEqual(expect.objectContaining({ exportId: due.id, currentCursor: BigInt(committed), isRunning: false }));
  });

  it("keeps every slot busy while a long run holds one", async () => {
    const specs = Array.from({ length: 10 }, (_, i) => spec(`E${i}`));
    const runner = new RecordingRunner(20, { E0: 1_000 });
    const scheduler = new RunScheduler(store, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 3 });
    await scheduler.tick();
    await until(() => runner.started.length === 10);
    scheduler.stop();
    // E0 ran throughout; the other nine went two at a time beside it, each freed slot filled at once.
    expect(runner.started[0]).toBe("E0");
    expect(runner.inFlightAtStart.slice(3).every((n) => n === 3 || n === 2)).toBe(true);
    expect(runner.inFlightAtStart.slice(3).filter((n) => n === 3).length).toBeGreaterThanOrEqual(3);
    await until(() => runner.runningCount === 0);
  });

  it("waits for the next tick after a run that could not start, instead of retrying at once", async () => {
    let listings = 0;
    let listingsWhenRefused: number | undefined;
    const refusing: ScheduledRunner = {
      isRunning: () => false,
      runningCount: 0,
      run: async () => {
        throw new Error("lease held elsewhere");
      },
    };
    const catalog = { listExportSpecs: async (req: { name?: string }) => (req.name ? undefined : listings++, { specs: [spec("Held")] }) as never };
    // A retry at once would start from the same handler that reports the refusal, and list the
    // exports before its first await: counting the listings there tells, without waiting.
    const refused = new Promise<void>((resolve) => {
      const log = (line: string) => {
        if (!line.includes("lease held elsewhere")) return;
        queueMicrotask(() => {
          listingsWhenRefused = listings;
          resolve();
        });
      };
      const scheduler = new RunScheduler(store, refusing, { catalog }, { tickMs: 3_600_000, maxConcurrentRuns: 1, log });
      void scheduler.tick().then(() => scheduler.stop());
    });
    await refused;
    expect(listingsWhenRefused).toBe(1);
  });

  it("does not run an export again before its interval has passed", async () => {
    const specs = [spec("Slow", 60_000), spec("Fast", 1)];
    const runner = new RecordingRunner(1);
    const scheduler = new RunScheduler(store, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 2 });
    await scheduler.tick();
    await until(() => runner.started.filter((n) => n === "Fast").length >= 5);
    scheduler.stop();
    await until(() => runner.runningCount === 0);
    expect(runner.started.filter((n) => n === "Slow")).toEqual(["Slow"]);
  });
});

describe("RunScheduler, states read", () => {
  it("reads again only the states of exports whose interval has passed since their last known start", async () => {
    // One clock for the scheduler and the ledger that records the runs' starts.
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const folder = await mkdtemp(join(tmpdir(), "spillway-states-"));
    const { module, cursor: client, ledger } = await openLedger(folder, now);
    try {
      const specs = [...Array.from({ length: 5 }, (_, i) => spec(`Hourly${i}`, 3_600_000)), spec("Minutely", 60_000)];
      const asked: string[][] = [];
      const counting: Pick<RunLedger, "getExportStates"> = {
        getExportStates: async (ids) => (asked.push([...ids].sort()), ledger.getExportStates(ids)),
      };
      const runner = new RecordingRunner(1, {}, (s) => recordRunStart(ledger, client, s));
      const scheduler = new RunScheduler(counting, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 6, now });
      await scheduler.tick();
      await until(() => runner.started.length === 6 && runner.runningCount === 0);
      // Each ran once, and the looks its end made read its new start.
      const everyId = specs.map((s) => s.id).sort();
      expect(asked[0]).toEqual(everyId);
      asked.length = 0;
      await scheduler.tick(false);
      expect(asked).toEqual([]);
      // A minute later Minutely alone may be due: its state alone is read, and it runs once.
      clock += 61_000;
      await scheduler.tick(false);
      await until(() => runner.started.length === 7 && runner.runningCount === 0);
      expect(asked[0]).toEqual(["id-Minutely"]);
      expect(runner.started.at(-1)).toBe("Minutely");
      // An hour later, every one.
      asked.length = 0;
      clock += 3_600_000;
      await scheduler.tick(false);
      expect(asked[0]).toEqual(everyId);
      scheduler.stop();
      await until(() => runner.runningCount === 0);
    } finally {
      await module.stop();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe("RunScheduler, looks at runs' ends", () => {
  it("read only the states of the exports that take the freed slots; a timed tick reads every due one", async () => {
    const specs = Array.from({ length: 8 }, (_, i) => spec(`E${i}`));
    const asked: string[][] = [];
    const counting: Pick<RunLedger, "getExportStates"> = { getExportStates: async (ids) => (asked.push([...ids]), store.getExportStates(ids)) };
    const runner = new RecordingRunner(5);
    const scheduler = new RunScheduler(counting, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 2 });
    await scheduler.tick();
    await until(() => runner.started.length === 8 && runner.runningCount === 0);
    expect(new Set(runner.started).size).toBe(8);
    // The first look read all eight; each later one at most the two a slot could go to.
    expect(asked[0]).toHaveLength(8);
    expect(asked.length).toBeGreaterThan(1);
    expect(asked.slice(1).every((ids) => ids.length <= 2)).toBe(true);
    asked.length = 0;
    // A timed tick reads every export that may be due again (none is, within its interval).
    specs.push(spec("Late"));
    await scheduler.tick(true);
    await until(() => runner.started.includes("Late") && runner.runningCount === 0);
    expect(asked[0]).toEqual(["id-Late"]);
    scheduler.stop();
  });

  it("give a slot whose export turned out to have run elsewhere to the next in line at once", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const { module, cursor: client, ledger } = await openLedger(await mkdtemp(join(tmpdir(), "spillway-elsewhere-")), now);
    try {
      const specs = [spec("A"), spec("B"), spec("C")];
      for (const s of specs) await client.initExportState({ exportId: s.id, database: s.database, name: s.name });
      // Creating a state starts its interval: an interval later, all three are due.
      clock += 61_000;
      const runner = new RecordingRunner(0, {}, (s) => recordRunStart(ledger, client, s));
      // One slot: A runs first (all equally behind, in listing order), then a look at its end would give the slot to B.
      const scheduler = new RunScheduler(
        {
          getExportStates: async (ids) => {
            // Another node starts B just before the look that would have picked it reads it.
            if (ids.length === 1 && ids[0] === "id-B" && !runner.started.includes("B")) await recordRunStart(ledger, client, specs[1]!);
            return ledger.getExportStates(ids);
          },
        },
        runner,
        catalogOf(specs),
        { tickMs: 3_600_000, maxConcurrentRuns: 1, now },
      );
      await scheduler.tick();
      await until(() => runner.started.includes("C") && runner.runningCount === 0);
      scheduler.stop();
      expect(runner.started).toEqual(["A", "C"]);
    } finally {
      await module.stop();
    }
  });
});

describe("RunScheduler, room and waiting", () => {
  it("launches no run into a slot a run asked for took while the states were read", async () => {
    const due = spec("Due", 1);
    await cursor.initExportState({ exportId: due.id, database: due.database, name: due.name });
    await new Promise((r) => setTimeout(r, 5));
    const runner = new RecordingRunner(0);
    let asked = 0;
    const counting: ScheduledRunner = { isRunning: (id) => runner.isRunning(id), get runningCount() { return runner.runningCount + asked; }, run: (s, seen) => runner.run(s, seen) };
    // A run asked for (RunContinuousExportNow) starts on the runner while the look reads the states.
    const reading: Pick<RunLedger, "getExportStates"> = { getExportStates: async (ids) => ((asked = 1), store.getExportStates(ids)) };
    const scheduler = new RunScheduler(reading, counting, catalogOf([due]), { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    scheduler.stop();
    expect(runner.started).toEqual([]);
    expect(scheduler.waitingCount).toBe(1);
  });

  it("does not launch an export a run asked for started while the states were read", async () => {
    const due = spec("Due", 1);
    await cursor.initExportState({ exportId: due.id, database: due.database, name: due.name });
    await new Promise((r) => setTimeout(r, 5));
    const runner = new RecordingRunner(50);
    let asked: Promise<unknown> | undefined;
    const reading: Pick<RunLedger, "getExportStates"> = { getExportStates: async (ids) => ((asked ??= runner.run(due)), store.getExportStates(ids)) };
    const scheduler = new RunScheduler(reading, runner, catalogOf([due]), { tickMs: 3_600_000, maxConcurrentRuns: 2 });
    await scheduler.tick();
    await asked;
    scheduler.stop();
    await until(() => runner.runningCount === 0);
    expect(runner.started).toEqual(["Due"]);
  });

  it("leaves an export whose lease another scheduler holds for a later look, instead of failing a run of it", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const { module, cursor: client, ledger } = await openLedger(await mkdtemp(join(tmpdir(), "spillway-held-")), now);
    try {
      const [held, free] = [spec("Held"), spec("Free")];
      for (const s of [held, free]) await client.initExportState({ exportId: s.id, database: s.database, name: s.name });
      // Another scheduler's run of Held started and is still under way, past Held's interval.
      await ledger.startRun({ exportId: held.id, name: held.name, runId: randomUUID(), owner: "elsewhere", leaseTtlMs: 600_000 });
      clock += 61_000;
      const runner = new RecordingRunner(0, {}, (s) => recordRunStart(ledger, client, s));
      const scheduler = new RunScheduler(ledger, runner, catalogOf([held, free]), { tickMs: 3_600_000, maxConcurrentRuns: 1, now });
      await scheduler.tick();
      await until(() => runner.started.length === 1 && runner.runningCount === 0);
      await scheduler.tick(false);
      scheduler.stop();
      expect(runner.started).toEqual(["Free"]);
      expect(scheduler.waitingCount).toBe(0);
    } finally {
      await module.stop();
    }
  });

  it("counts as waiting those a timed tick found due, less those launched or found run elsewhere since", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const { module, cursor: client, ledger } = await openLedger(await mkdtemp(join(tmpdir(), "spillway-waiting-")), now);
    try {
      const specs = [spec("A"), spec("B"), spec("C"), spec("D")];
      for (const s of specs) await client.initExportState({ exportId: s.id, database: s.database, name: s.name });
      clock += 61_000;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      // A ends at once; B holds its slot until released. C and D wait for room.
      const runner = new RecordingRunner(0, {}, async (s) => {
        await recordRunStart(ledger, client, s);
        if (s.name === "B") await held;
      });
      // Another node runs C and D before A's end makes this one look again.
      const elsewhere = async () => {
        for (const s of specs.slice(2)) await recordRunStart(ledger, client, s);
      };
      let ranElsewhere = false;
      const store: Pick<RunLedger, "getExportStates"> = {
        getExportStates: async (ids) => {
          if (ids.length < specs.length && !ranElsewhere) {
            ranElsewhere = true;
            await elsewhere();
          }
          return ledger.getExportStates(ids);
        },
      };
      const scheduler = new RunScheduler(store, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 2, now });
      await scheduler.tick();
      expect(scheduler.waitingCount).toBe(2);
      await until(() => runner.started.length === 2 && runner.runningCount === 1 && ranElsewhere);
      await until(() => scheduler.waitingCount === 0);
      expect(runner.started).toEqual(["A", "B"]);
      release();
      await until(() => runner.runningCount === 0);
      scheduler.stop();
    } finally {
      await module.stop();
    }
  });
});

describe("RunScheduler, a listing gone stale", () => {
  it("gives the slot of an export dropped since the listing to the next due one at once", async () => {
    const listed = [spec("Dropped"), spec("Next")];
    const counter = { full: 0 };
    const catalog = {
      // The listing still has Dropped; asked by name, the catalog no longer does.
      listExportSpecs: async (req: { name?: string }) => (req.name ? undefined : counter.full++, { specs: req.name ? listed.filter((s) => s.name === req.name && s.name !== "Dropped") : listed }) as never,
    };
    const runner = new RecordingRunner(1);
    const scheduler = new RunScheduler(store, runner, { catalog }, { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    await until(() => runner.started.includes("Next"));
    scheduler.stop();
    expect(runner.started).toEqual(["Next"]);
    expect(counter.full).toBe(1);
  });
});

/**
 * Creates the exports' states, commits `extents` extents (calling `advance` after each, to move
 * the clock), and checkpoints each export at the cursor `at` picks for it from theirs.
 */
async function checkpointed(client: ServiceClient<typeof CursorService>, ledger: RunLedger, specs: ExportSpec[], extents: number, at: (cursors: bigint[]) => Record<string, bigint>, advance: () => void): Promise<Record<string, bigint>> {
  for (const s of specs) await client.initExportState({ exportId: s.id, database: s.database, name: s.name });
  const cursors: bigint[] = [];
  for (let i = 1; i <= extents; i++) {
    cursors.push(BigInt((await client.commitExtent({ database: "db", table: "T", extentId: `e${i}`, path: `e${i}`, rowCount: 1n, sizeBytes: 1n })).cursor));
    advance();
  }
  const checkpointOf = at(cursors);
  for (const s of specs) {
    const runId = randomUUID();
    const opened = (await ledger.startRun({ exportId: s.id, name: s.name, runId, owner: "me", leaseTtlMs: 60_000, maxCursor: checkpointOf[s.name]! }))!;
    await ledger.commitRun(s.id, runId, "Lake", opened.from, opened.to, [], "me");
  }
  return checkpointOf;
}

describe("RunScheduler, exports unequally behind", () => {
  it("runs them furthest behind first, one slot at a time", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const { module, cursor: client, ledger } = await openLedger(await mkdtemp(join(tmpdir(), "spillway-behind-")), now);
    try {
      const specs = [spec("X"), spec("Y"), spec("Z")];
      // Three extents, three cursors k1 < k2 < k3; X is checkpointed at k3, Y at k1, Z at k2.
      const checkpointOf = await checkpointed(client, ledger, specs, 3, (k) => ({ X: k[2]!, Y: k[0]!, Z: k[1]! }), () => (clock += 1000));
      // An interval later, all three are due; each run moves its last start, so each runs once.
      clock += 61_000;
      // With every slot taken, all three wait (the runs_waiting metric), and none starts.
      const full = new RunScheduler(ledger, { isRunning: () => false, runningCount: 1, run: () => Promise.reject(new Error("no room")) }, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 1, now });
      await full.tick();
      expect(full.waitingCount).toBe(3);
      // A runner that says what it is running, as the real one does, so a look while a run is under way does not start it again.
      const runner = new RecordingRunner(0, {}, async (s) => {
        await ledger.startRun({ exportId: s.id, name: s.name, runId: randomUUID(), owner: "me", leaseTtlMs: 60_000, maxCursor: checkpointOf[s.name]! });
        await ledger.releaseLease(s.id, "me");
      });
      const { started } = runner;
      const scheduler = new RunScheduler(ledger, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 1, now });
      await scheduler.tick();
      await until(() => started.length === 3);
      await scheduler.tick();
      expect(scheduler.waitingCount).toBe(0);
      scheduler.stop();
      expect(started).toEqual(["Y", "Z", "X"]);
      expect(runner.maxInFlight).toBe(1);
    } finally {
      await module.stop();
    }
  });

  it("puts an export that ran behind those still waiting when it is due again, by where its run left its checkpoint", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const { module, cursor: client, ledger } = await openLedger(await mkdtemp(join(tmpdir(), "spillway-again-")), now);
    try {
      // A is due again a second after it runs; B and C wait for the one slot meanwhile.
      const specs = [spec("A", 1_000), spec("B"), spec("C")];
      // A is furthest behind (k1), then B (k2), then C (k3); a run takes everything up to k4.
      await checkpointed(client, ledger, specs, 4, (k) => ({ A: k[0]!, B: k[1]!, C: k[2]! }), () => (clock += 1000));
      clock += 61_000;
      const started: string[] = [];
      let inFlight = 0;
      const runner: ScheduledRunner = {
        isRunning: () => false,
        get runningCount() {
          return inFlight;
        },
        run: async (s) => {
          inFlight++;
          try {
            started.push(s.name);
            const runId = randomUUID();
            const opened = (await ledger.startRun({ exportId: s.id, name: s.name, runId, owner: "me", leaseTtlMs: 60_000 }))!;
            await ledger.commitRun(s.id, runId, "Lake", opened.from, opened.to, [], "me");
            // Each run takes a second: by its end A's interval has passed again.
            clock += 1_000;
            return { runId, result: "Completed", from: opened.from, to: opened.to, artifacts: [], details: "" };
          } finally {
            inFlight--;
          }
        },
      };
      const scheduler = new RunScheduler(ledger, runner, catalogOf(specs), { tickMs: 3_600_000, maxConcurrentRuns: 1, now });
      await scheduler.tick();
      await until(() => started.length >= 4);
      scheduler.stop();
      expect(started.slice(0, 4)).toEqual(["A", "B", "C", "A"]);
    } finally {
      await module.stop();
    }
  });
});
