import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ExportSpecSchema, type ExportSpec } from "@spillway/proto";
import { CursorStore } from "./cursor-store.js";
import type { RunOutcome } from "./export-runner.js";
import { RunScheduler, type ScheduledRunner } from "./run-scheduler.js";
import { waitFor } from "../../../test/support/free-port.js";

let dir: string;
let store: CursorStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spillway-scheduler-"));
  store = await CursorStore.open(dir);
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const spec = (name: string, intervalMs = 60_000): ExportSpec =>
  create(ExportSpecSchema, { id: `id-${name}`, database: "db", name, intervalBetweenRuns: durationFromMs(intervalMs) });

/** Records each run in the real store (as the real runner does) and takes `runMs`. */
class RecordingRunner implements ScheduledRunner {
  readonly started: string[] = [];
  maxInFlight = 0;
  private readonly inFlight = new Set<string>();

  constructor(private readonly runMs: number) {}

  isRunning(exportId: string): boolean {
    return this.inFlight.has(exportId);
  }

  get runningCount(): number {
    return this.inFlight.size;
  }

  async run(s: ExportSpec): Promise<RunOutcome> {
    this.inFlight.add(s.id);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    this.started.push(s.name);
    try {
      await store.initExportState(s.id, s.database, s.name);
      await store.beginRun(s.id, randomUUID(), 0n, 0n);
      await new Promise((r) => setTimeout(r, this.runMs));
      return { runId: "", result: "Completed", from: 0n, to: 0n, artifacts: [], details: "" };
    } finally {
      this.inFlight.delete(s.id);
    }
  }
}

/** Waits (up to 5 s) until `condition` holds. */
const until = (condition: () => boolean) => waitFor("the scheduler", async () => (condition() ? true : undefined), 5_000);

describe("RunScheduler", () => {
  it("fills a freed slot at once instead of waiting for the next tick", async () => {
    const specs = Array.from({ length: 10 }, (_, i) => spec(`E${i}`));
    const runner = new RecordingRunner(20);
    // The timer is never started: only the first tick and the runs' own completions drive it.
    const scheduler = new RunScheduler(store, runner, { catalog: { listExportSpecs: async () => ({ specs }) as never } }, { tickMs: 3_600_000, maxConcurrentRuns: 3 });
    await scheduler.tick();
    await until(() => runner.started.length === 10 && runner.runningCount === 0);
    scheduler.stop();
    expect(new Set(runner.started).size).toBe(10);
    expect(runner.maxInFlight).toBe(3);
  });

  it("waits for the next tick after a run that could not start, instead of retrying at once", async () => {
    let attempts = 0;
    const refusing: ScheduledRunner = {
      isRunning: () => false,
      runningCount: 0,
      run: async () => {
        attempts++;
        throw new Error("lease held elsewhere");
      },
    };
    const scheduler = new RunScheduler(store, refusing, { catalog: { listExportSpecs: async () => ({ specs: [spec("Held")] }) as never } }, { tickMs: 3_600_000, maxConcurrentRuns: 1 });
    await scheduler.tick();
    await new Promise((r) => setTimeout(r, 200));
    scheduler.stop();
    expect(attempts).toBe(1);
  });

  it("does not run an export again before its interval has passed", async () => {
    const specs = [spec("Slow", 60_000), spec("Fast", 1)];
    const runner = new RecordingRunner(1);
    const scheduler = new RunScheduler(store, runner, { catalog: { listExportSpecs: async () => ({ specs }) as never } }, { tickMs: 3_600_000, maxConcurrentRuns: 2 });
    await scheduler.tick();
    await until(() => runner.started.filter((n) => n === "Fast").length >= 5);
    scheduler.stop();
    await until(() => runner.runningCount === 0);
    expect(runner.started.filter((n) => n === "Slow")).toEqual(["Slow"]);
  });

  it("runs the export furthest behind first when slots are short", async () => {
    const specs = ["A", "B", "C"].map((n) => spec(n));
    for (const s of specs) await store.initExportState(s.id, s.database, s.name);
    // B's checkpoint is the oldest: an extent committed after the others' states were taken.
    await store.commitExtent({ database: "db", table: "T", extentId: "e1", path: "p", rowCount: 1n, sizeBytes: 1n });
    const { cursor } = await store.listExtents("db", ["T"], 0n);
    const runIdA = randomUUID();
    await store.beginRun("id-A", runIdA, 0n, cursor);
    await store.acquireLease("id-A", "me", 60_000);
    await store.commitRun("id-A", runIdA, "X", (await store.getExportStates(["id-A"]))[0]!.checkpointCursor, cursor, [], "me");
    await store.releaseLease("id-A", "me");
    const runner = new RecordingRunner(1);
    // A's state now has a recent lastRunStart but a 0 ms interval: it is due too, yet not behind.
    const scheduler = new RunScheduler(
      store,
      runner,
      { catalog: { listExportSpecs: async () => ({ specs: specs.map((s) => ({ ...s, intervalBetweenRuns: durationFromMs(0) })) }) as never } },
      { tickMs: 3_600_000, maxConcurrentRuns: 1 },
    );
    await scheduler.tick();
    scheduler.stop();
    await until(() => runner.runningCount === 0 && runner.started.length > 0);
    expect(runner.started[0]).not.toBe("A");
  });
});

describe("RunScheduler, exports unequally behind", () => {
  it("runs them furthest behind first, one slot at a time", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => clock;
    const ledger = await CursorStore.open(await mkdtemp(join(tmpdir(), "spillway-behind-")), now);
    try {
      // Three extents, three cursors k1 < k2 < k3; X is checkpointed at k3, Y at k1, Z at k2.
      const cursors: bigint[] = [];
      for (const e of ["e1", "e2", "e3"]) {
        cursors.push(await ledger.commitExtent({ database: "db", table: "T", extentId: e, path: e, rowCount: 1n, sizeBytes: 1n }));
        clock += 1000;
      }
      const specs = [spec("X"), spec("Y"), spec("Z")];
      const checkpointOf: Record<string, bigint> = { X: cursors[2]!, Y: cursors[0]!, Z: cursors[1]! };
      for (const s of specs) {
        await ledger.initExportState(s.id, s.database, s.name);
        const runId = randomUUID();
        await ledger.beginRun(s.id, runId, 0n, checkpointOf[s.name]!);
        await ledger.acquireLease(s.id, "me", 60_000);
        await ledger.commitRun(s.id, runId, "Lake", (await ledger.getExportStates([s.id]))[0]!.checkpointCursor, checkpointOf[s.name]!, [], "me");
        await ledger.releaseLease(s.id, "me");
      }
      // An interval later, all three are due; each run moves its last start, so each runs once.
      clock += 61_000;
      const started: string[] = [];
      const runner: ScheduledRunner = {
        isRunning: () => false,
        runningCount: 0,
        run: async (s) => {
          started.push(s.name);
          await ledger.beginRun(s.id, randomUUID(), checkpointOf[s.name]!, checkpointOf[s.name]!);
          return { runId: "", result: "Completed", from: 0n, to: 0n, artifacts: [], details: "" };
        },
      };
      const scheduler = new RunScheduler(ledger, runner, { catalog: { listExportSpecs: async () => ({ specs }) as never } }, { tickMs: 3_600_000, maxConcurrentRuns: 1, now });
      await scheduler.tick();
      await until(() => started.length === 3);
      scheduler.stop();
      expect(started).toEqual(["Y", "Z", "X"]);
    } finally {
      await ledger.close();
    }
  });
});
