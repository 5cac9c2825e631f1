import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { temporaryFolders, type StorePlaces } from "@spillway/metadata";
import { ticksFromEpochMs } from "@spillway/kusto";
import type { CursorStore, ExtentRecord } from "./cursor-store.js";

/**
 * What every cursor store must do (DESIGN "Scale-out": each store has an embedded DuckDB
 * implementation and a PostgreSQL one, held to one contract). `open` gives the store kept
 * under `place` (a folder for DuckDB), reading time from `now`; opening the same place
 * again must find what was committed.
 */
export function cursorStoreContract(
  implementation: string,
  open: (place: string, now: () => number) => Promise<CursorStore>,
  places: StorePlaces = temporaryFolders("spillway-cursor-"),
  /** Other nodes use the store too (PostgreSQL): their leases are not this process's to free. */
  { shared = false }: { shared?: boolean } = {},
): void {
  const T0 = Date.UTC(2024, 0, 1);
  const DAY = 86_400_000;

  let dir: string;
  let clock: number;
  let store: CursorStore;

  beforeEach(async () => {
    dir = await places.create();
    clock = T0;
    store = await open(dir, () => clock);
  });

  afterEach(async () => {
    await store.close();
    await places.remove(dir);
  });

  const extent = (table: string, extentId: string): Omit<ExtentRecord, "cursor"> => ({
    database: "db",
    table,
    extentId,
    path: `extents/db/${table}/${extentId}.parquet`,
    rowCount: 10n,
    sizeBytes: 1234n,
  });

  async function reopen(): Promise<void> {
    await store.close();
    store = await open(dir, () => clock);
  }

  describe(`cursor store contract (${implementation})`, () => {
    describe("cursors", () => {
      it("start at 0 and are the commit time in ticks", async () => {
        expect(await store.currentCursor()).toBe(0n);
        expect(await store.commitExtent(extent("T", "e1"))).toBe(ticksFromEpochMs(T0));
        expect(await store.currentCursor()).toBe(ticksFromEpochMs(T0));
      });

      it("strictly increase while the clock stands still", async () => {
        const cursors = [];
        for (const id of ["e1", "e2", "e3"]) cursors.push(await store.commitExtent(extent("T", id)));
        const t = ticksFromEpochMs(T0);
        expect(cursors).toEqual([t, t + 1n, t + 2n]);
      });

      it("strictly increase when the clock goes backwards, and follow it again when it catches up", async () => {
        const first = await store.commitExtent(extent("T", "e1"));
        clock = T0 - 60_000;
        expect(await store.commitExtent(extent("T", "e2"))).toBe(first + 1n);
        clock = T0 + 5;
        expect(await store.commitExtent(extent("T", "e3"))).toBe(ticksFromEpochMs(T0 + 5));
      });

      it("strictly increase under concurrent commits", async () => {
        const cursors = await Promise.all(["a", "b", "c", "d"].map((id) => store.commitExtent(extent("T", id))));
        const t = ticksFromEpochMs(T0);
        expect([...cursors].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual([t, t + 1n, t + 2n, t + 3n]);
      });
    });

    describe("listExtents", () => {
      let c1: bigint, c2: bigint, c3: bigint;

      beforeEach(async () => {
        c1 = await store.commitExtent(extent("T", "e1"));
        clock += 1000;
        c2 = await store.commitExtent(extent("Other", "o1"));
        clock += 1000;
        c3 = await store.commitExtent(extent("T", "e2"));
      });

      const ids = (r: { extents: ExtentRecord[] }) => r.extents.map((e) => e.extentId);

      it("returns the extents of the tables asked for, in cursor order, as committed", async () => {
        const all = await store.listExtents("db", ["T", "Other"], 0n);
        expect(all).toEqual({
          extents: [
            { ...extent("T", "e1"), cursor: c1 },
            { ...extent("Other", "o1"), cursor: c2 },
            { ...extent("T", "e2"), cursor: c3 },
          ],
          cursor: c3,
        });
        expect(ids(await store.listExtents("db", ["T"], 0n))).toEqual(["e1", "e2"]);
        expect(ids(await store.listExtents("other-db", ["T"], 0n))).toEqual([]);
        expect(await store.listExtents("db", [], 0n)).toEqual({ extents: [], cursor: c3 });
      });

      it("excludes `after` and includes `upTo`", async () => {
        expect(await store.listExtents("db", ["T", "Other"], c1, c2)).toEqual({ extents: [{ ...extent("Other", "o1"), cursor: c2 }], cursor: c2 });
        expect(ids(await store.listExtents("db", ["T", "Other"], c1, c3))).toEqual(["o1", "e2"]);
        expect(ids(await store.listExtents("db", ["T", "Other"], c3))).toEqual([]);
        expect(ids(await store.listExtents("db", ["T", "Other"], c2, c2))).toEqual([]);
      });

      it("clamps `upTo` to the current cursor", async () => {
        expect(await store.listExtents("db", ["T"], c1, c3 + 1_000_000n)).toEqual({ extents: [{ ...extent("T", "e2"), cursor: c3 }], cursor: c3 });
      });

      it("forgets a dropped table's extents and returns their paths", async () => {
        expect(await store.dropTableExtents("db", "T")).toEqual(["extents/db/T/e1.parquet", "extents/db/T/e2.parquet"]);
        expect(ids(await store.listExtents("db", ["T", "Other"], 0n))).toEqual(["o1"]);
        // Their files wait a while for readers that listed them before (5 minutes by default).
        expect(await store.droppedExtents(10)).toEqual([]);
        clock += 5 * 60_000 + 1;
        expect((await store.droppedExtents(10)).map((e) => e.extentId)).toEqual(["e1", "e2"]);
      });
    });

    const OWNER = "scheduler-a";

    describe("extent tags", () => {
      it("skip an extent whose if-not-exists tag an extent of the table has, until the table's extents are dropped", async () => {
        const first = await store.commitTaggedExtent(extent("T", "a"), ["ingest-by:batch-1", "ingest-by:batch-1"], ["ingest-by:batch-1"]);
        expect(first.skipped).toBe(false);
        const current = await store.currentCursor();
        // A retry of the same batch: nothing committed, the clock unmoved.
        expect(await store.commitTaggedExtent(extent("T", "a-again"), ["ingest-by:batch-1"], ["ingest-by:batch-1"])).toEqual({ skipped: true });
        expect(await store.currentCursor()).toBe(current);
        expect((await store.listExtents("db", ["T"], 0n)).extents.map((e) => e.extentId)).toEqual(["a"]);
        // Another table, or another tag, is not that batch.
        expect((await store.commitTaggedExtent(extent("U", "b"), [], ["ingest-by:batch-1"])).skipped).toBe(false);
        expect((await store.commitTaggedExtent(extent("T", "c"), ["ingest-by:batch-2"], ["ingest-by:batch-2"])).skipped).toBe(false);
        expect(await store.findExtentTags("db", "T", ["ingest-by:batch-2", "ingest-by:batch-1", "ingest-by:none"])).toEqual(["ingest-by:batch-1", "ingest-by:batch-2"]);
        await reopen();
        expect(await store.findExtentTags("db", "T", ["ingest-by:batch-1"])).toEqual(["ingest-by:batch-1"]);
        await store.dropTableExtents("db", "T");
        expect(await store.findExtentTags("db", "T", ["ingest-by:batch-1"])).toEqual([]);
        expect((await store.commitTaggedExtent(extent("T", "d"), ["ingest-by:batch-1"], ["ingest-by:batch-1"])).skipped).toBe(false);
      });
    });

    describe("operations", () => {
      const artifact = { path: "https://acct/c/export_1.csv", numRecords: 3n, sizeBytes: 30n };

      it("is taken by one scheduler at a time, and commits its artifacts and clears its journal as it completes", async () => {
        await store.createOperation("op-1", "db", "ExportToTable", '{"q":1}');
        await store.createOperation("op-2", "other", "ExportToTable", "{}");
        expect((await store.listOperations("db")).map((o) => [o.operationId, o.state, o.owner])).toEqual([["op-1", "InProgress", ""]]);
        const taken = await store.claimOperation("sched-a", 60_000);
        expect(taken).toMatchObject({ operation: { operationId: "op-1", database: "db", request: '{"q":1}', owner: "sched-a" }, abandoned: false, pending: [], claim: 1n });
        // The next claim takes the other one, and then there is none.
        expect((await store.claimOperation("sched-b", 60_000))?.operation.operationId).toBe("op-2");
        expect(await store.claimOperation("sched-b", 60_000)).toBeUndefined();
        expect(await store.renewOperation("op-1", "sched-a", 60_000, "upload")).toEqual({ held: true, cancelRequested: false });
        // The step it reached stays until the next one is said.
        await store.renewOperation("op-1", "sched-a", 60_000);
        expect((await store.listOperations("db", "op-1"))[0]!.phase).toBe("upload");
        expect(await store.renewOperation("op-1", "sched-b", 60_000)).toEqual({ held: false, cancelRequested: false });

        await store.journalPending("op-1", "op-1", [artifact.path]);
        await expect(store.finishOperation("op-1", "sched-b", { state: "Completed", status: "", externalTable: "Lake", artifacts: [artifact], resources: "" })).rejects.toThrow("no longer this scheduler's");
        clock += 500;
        await store.finishOperation("op-1", "sched-a", { state: "Completed", status: "", externalTable: "Lake", artifacts: [artifact], resources: '{"parts":1}' });
        expect(await store.listOperations("db", "op-1")).toEqual([expect.objectContaining({ state: "Completed", resources: '{"parts":1}', updatedAt: new Date(clock) })]);
        expect(await store.listArtifacts("op-1")).toEqual([{ ...artifact, externalTable: "Lake", timestamp: new Date(clock) }]);
        expect(await store.pendingArtifacts("op-1")).toEqual([]);
        // Ended: it cannot be finished twice.
        await expect(store.finishOperation("op-1", "sched-a", { state: "Failed", status: "x", externalTable: "Lake", artifacts: [], resources: "" })).rejects.toThrow();
      });

      it("cancels one not yet taken at once, and tells the owner of a running one when it renews", async () => {
        await store.createOperation("op-1", "db", "ExportToTable", "{}");
        expect(await store.cancelOperation("op-1")).toMatchObject({ state: "Canceled" });
        expect(await store.claimOperation("sched-a", 60_000)).toBeUndefined();

        await store.createOperation("op-2", "db", "ExportToTable", "{}");
        await store.claimOperation("sched-a", 60_000);
        expect(await store.cancelOperation("op-2")).toMatchObject({ state: "InProgress", cancelRequested: true });
        expect(await store.renewOperation("op-2", "sched-a", 60_000)).toEqual({ held: true, cancelRequested: true });
        await store.finishOperation("op-2", "sched-a", { state: "Canceled", status: "canceled by request", externalTable: "Lake", artifacts: [], resources: "" });
        expect(await store.cancelOperation("missing")).toBeUndefined();
      });

      it("journals an attempt's files, when it names its claim, only while that claim holds the operation", async () => {
        await store.createOperation("op-1", "db", "ExportToTable", "{}");
        await store.claimOperation("sched-a", 10_000);
        // Expired, but no other claim took it: still its own.
        clock += 10_001;
        await store.journalOperationPending("op-1", "t-a", ["blob/a1.csv"], "sched-a");
        // Numbered: a Delta backfill's txn versions tell the two claims apart.
        expect(await store.claimOperation("sched-b", 10_000)).toMatchObject({ abandoned: true, pending: ["blob/a1.csv"], claim: 2n });
        // Taken over: refused, nothing journaled.
        await expect(store.journalOperationPending("op-1", "t-a", ["blob/a2.csv"], "sched-a")).rejects.toThrow("operation op-1 is no longer this scheduler's");
        await store.journalOperationPending("op-1", "t-b", ["blob/b1.csv"], "sched-b");
        // Ended: refused to its own claim too.
        await store.finishOperation("op-1", "sched-b", { state: "Failed", status: "x", externalTable: "Lake", artifacts: [], resources: "" });
        await expect(store.journalOperationPending("op-1", "t-b", ["blob/b2.csv"], "sched-b")).rejects.toThrow("no longer this scheduler's");
        await expect(store.journalOperationPending("missing", "t", ["blob/m.csv"], "sched-b")).rejects.toThrow("no longer this scheduler's");
        expect((await store.pendingArtifacts("op-1")).map((p) => p.path).sort()).toEqual(["blob/a1.csv", "blob/b1.csv"]);
      });

      it("gives one whose owner stopped (its lease expired) to the next claim, with the files it journaled", async () => {
        await store.createOperation("op-1", "db", "ExportToTable", "{}");
        await store.claimOperation("sched-a", 10_000);
        await store.journalPending("op-1", "op-1", [artifact.path]);
        expect(await store.claimOperation("sched-b", 10_000)).toBeUndefined();
        clock += 10_001;
        expect(await store.claimOperation("sched-b", 10_000)).toMatchObject({ operation: { operationId: "op-1", owner: "sched-b" }, abandoned: true, pending: [artifact.path] });
        // The old owner can no longer end it.
        expect((await store.renewOperation("op-1", "sched-a", 10_000)).held).toBe(false);
      });
    });

    describe("start cursors", () => {
      it("is the creation time when nothing was ingested, and every later extent's cursor is above it, whatever the clock says", async () => {
        clock = T0 + 5000;
        const state = await store.initExportState("x0", "db", "Early");
        expect(state.startCursor).toBe(ticksFromEpochMs(T0 + 5000));
        expect(state.checkpointCursor).toBe(state.startCursor);
        // A node whose clock is behind commits next: its extent still comes after the start.
        clock = T0;
        expect(await store.commitExtent(extent("T", "late"))).toBe(state.startCursor + 1n);
        // Kept as it was when the export is initialised again.
        clock = T0 + 9000;
        expect((await store.initExportState("x0", "db", "Early")).startCursor).toBe(state.startCursor);
      });
    });

    describe("export runs", () => {
      let start: bigint;
      let to: bigint;

      beforeEach(async () => {
        start = await store.commitExtent(extent("T", "before"));
        clock += 1000;
        expect(await store.initExportState("x1", "db", "Export1")).toEqual({
          exportId: "x1",
          database: "db",
          name: "Export1",
          startCursor: start,
          checkpointCursor: start,
          runCount: 0n,
          lastRunResult: "",
          lastRunTime: undefined,
          // Creation counts as the start of the schedule: the first run is one interval later.
          lastRunStart: new Date(clock),
          lastSuccessTime: undefined,
          isRunning: false,
          systemDisabled: "",
        });
        to = await store.commitExtent(extent("T", "after"));
        clock += 1000;
        expect(await store.acquireLease("x1", OWNER, 60_000)).toBe(true);
      });

      const state = async () => (await store.getExportStates(["x1"]))[0]!;
      /** A run under OWNER's lease (a commit or failure record releases it). */
      const begin = async (exportId: string, runId: string, from: bigint, upTo: bigint) => {
        await store.acquireLease(exportId, OWNER, 60_000);
        return store.beginRun(exportId, runId, from, upTo);
      };

      it("initExportState keeps an existing state", async () => {
        expect((await store.initExportState("x1", "db", "Renamed")).startCursor).toBe(start);
        expect(await store.getExportStates(["x1", "missing"])).toHaveLength(1);
      });

      it("getExportStates reads the commit log's last cursor with the states (a run's range up to it)", async () => {
        expect((await state()).currentCursor).toBe(to);
        const later = await store.commitExtent(extent("T", "later"));
        expect((await state()).currentCursor).toBe(later);
      });

      it("commitRun moves the checkpoint and records the artifacts", async () => {
        expect(await begin("x1", "run-1", start, to)).toBe(1n);
        // A run holds the lease: the state shows it running, until its commit releases it.
        expect((await state()).isRunning).toBe(true);
        const artifacts = [
          { path: "https://acct/c/a.csv", numRecords: 5n, sizeBytes: 50n },
          { path: "https://acct/c/b.csv", numRecords: 7n, sizeBytes: 70n },
        ];
        const committed = await store.commitRun("x1", "run-1", "Ext", start, to, artifacts, OWNER);
        const at = new Date(clock);
        expect(committed).toEqual(artifacts.map((a) => ({ ...a, externalTable: "Ext", timestamp: at })));
        expect(await state()).toMatchObject({ checkpointCursor: to, runCount: 1n, lastRunResult: "Completed", lastRunTime: at, lastSuccessTime: at, lastRunStart: at, isRunning: false });
        expect(await store.listArtifacts("x1")).toEqual(committed);
        expect(await store.abandonedRuns()).toEqual([]);
      });

      it("commitRun refuses when the checkpoint moved, and changes nothing", async () => {
        await begin("x1", "run-1", start, to);
        await begin("x1", "run-2", start, to);
        await store.commitRun("x1", "run-1", "Ext", start, to, [{ path: "a", numRecords: 1n, sizeBytes: 1n }], OWNER);
        await store.acquireLease("x1", OWNER, 60_000);
        await expect(store.commitRun("x1", "run-2", "Ext", start, to, [{ path: "b", numRecords: 1n, sizeBytes: 1n }], OWNER)).rejects.toThrow(
          `checkpoint moved from ${start} to ${to} during the run`,
        );
        expect((await store.listArtifacts("x1")).map((a) => a.path)).toEqual(["a"]);
        // Still Running: abandoned once no one holds the export's lease.
        expect(await store.abandonedRuns()).toEqual([]);
        await store.releaseLease("x1", OWNER);
        expect(await store.abandonedRuns()).toEqual([{ exportId: "x1", runId: "run-2", name: "Export1" }]);
      });

      it("commitRun refuses when the export was dropped", async () => {
        await begin("x1", "run-1", start, to);
        await store.dropExportState("x1");
        await expect(store.commitRun("x1", "run-1", "Ext", start, to, [], OWNER)).rejects.toThrow("the export was dropped during the run");
        expect(await store.getExportStates(["x1"])).toEqual([]);
      });

      it("failRun records the failure with the last success time", async () => {
        await begin("x1", "run-1", start, to);
        const firstFailure = { operationId: "op-1", name: "Export1", failureKind: "Failure" as const, details: "storage unavailable", isPermanent: false };
        await store.failRun("x1", "run-1", firstFailure);
        const failedAt = new Date(clock);
        expect(await state()).toMatchObject({ lastRunResult: "Failed", lastRunTime: failedAt, lastSuccessTime: undefined, checkpointCursor: start });

        clock += 1000;
        await begin("x1", "run-2", start, to);
        await store.commitRun("x1", "run-2", "Ext", start, to, [], OWNER);
        const succeededAt = new Date(clock);
        clock += 1000;
        await begin("x1", "run-3", to, to);
        const secondFailure = { operationId: "op-3", name: "Export1", failureKind: "PartialFailure" as const, details: "denied", isPermanent: true };
        await store.failRun("x1", "run-3", secondFailure);

        expect(await store.listFailures("x1")).toEqual([
          { ...firstFailure, timestamp: failedAt, lastSuccessRun: undefined },
          { ...secondFailure, timestamp: new Date(clock), lastSuccessRun: succeededAt },
        ]);
        expect((await state()).runCount).toBe(3n);
      });

      it("failRun of a dropped export does nothing", async () => {
        await store.failRun("gone", "run-1", { operationId: "op", name: "X", failureKind: "Failure", details: "d", isPermanent: false });
        expect(await store.listFailures("gone")).toEqual([]);
      });

      it("abandonedRuns lists the runs still Running whose export's lease is gone or expired, with the export's name", async () => {
        await store.initExportState("x2", "db", "Export2");
        await store.initExportState("x3", "db", "Export3");
        await begin("x1", "run-1", start, to);
        await begin("x2", "run-2", to, to);
        await begin("x1", "run-3", start, to);
        await store.failRun("x1", "run-3", { operationId: "op", name: "Export1", failureKind: "Failure", details: "d", isPermanent: false });
        clock += 60_000;
        // A run whose owner still holds the lease is in flight on some node, not abandoned.
        await begin("x3", "run-4", to, to);
        const abandoned = await store.abandonedRuns();
        expect(abandoned.sort((a, b) => a.runId.localeCompare(b.runId))).toEqual([
          { exportId: "x1", runId: "run-1", name: "Export1" },
          { exportId: "x2", runId: "run-2", name: "Export2" },
        ]);
      });

      it("lists artifacts for 14 days", async () => {
        await begin("x1", "run-1", start, to);
        await store.commitRun("x1", "run-1", "Ext", start, to, [{ path: "old", numRecords: 1n, sizeBytes: 1n }], OWNER);
        const committedAt = clock;
        clock += 1000;
        await begin("x1", "run-2", to, to);
        await store.commitRun("x1", "run-2", "Ext", to, to, [{ path: "new", numRecords: 1n, sizeBytes: 1n }], OWNER);

        clock = committedAt + 14 * DAY;
        expect((await store.listArtifacts("x1")).map((a) => a.path)).toEqual(["old", "new"]);
        clock = committedAt + 14 * DAY + 1;
        expect((await store.listArtifacts("x1")).map((a) => a.path)).toEqual(["new"]);
      });

      it("lists runs oldest first, with their range, result, resources and the export's name, for 14 days", async () => {
        await store.initExportState("x2", "db", "Export2");
        await begin("x1", "run-1", start, to);
        const runStarted = new Date(clock);
        clock += 250;
        await store.commitRun("x1", "run-1", "Ext", start, to, [{ path: "a", numRecords: 1n, sizeBytes: 1n }], OWNER, '{"parts":2}');
        const committedAt = new Date(clock);
        clock += 1000;
        await begin("x1", "run-2", to, to);
        await store.failRun("x1", "run-2", { operationId: "op", name: "Export1", failureKind: "Failure", details: "storage down", isPermanent: false }, OWNER, '{"parts":1}');
        clock += 1000;
        await begin("x2", "run-3", to, to);

        const runs = await store.listRuns(["x1"]);
        expect(runs).toEqual([
          { runId: "run-1", exportId: "x1", database: "db", name: "Export1", runNumber: 1n, result: "Completed", from: start, to, startedAt: runStarted, finishedAt: committedAt, details: "", resources: '{"parts":2}' },
          expect.objectContaining({ runId: "run-2", runNumber: 2n, result: "Failed", from: to, to, details: "storage down", resources: '{"parts":1}' }),
        ]);
        // Every export's when none is named; a run in flight shows as Running, with nothing recorded yet.
        expect((await store.listRuns([])).map((r) => [r.runId, r.result, r.resources])).toEqual([
          ["run-1", "Completed", '{"parts":2}'],
          ["run-2", "Failed", '{"parts":1}'],
          ["run-3", "Running", ""],
        ]);
        expect((await store.listRuns(["x1", "x2"], new Date(committedAt.getTime() + 1))).map((r) => r.runId)).toEqual(["run-2", "run-3"]);
        clock = runStarted.getTime() + 14 * DAY + 1;
        expect((await store.listRuns(["x1"])).map((r) => r.runId)).toEqual(["run-2"]);
      });

      it("pruneHistory forgets runs, artifacts and failures past 14 days, but not a run still Running", async () => {
        await begin("x1", "run-1", start, to);
        await store.commitRun("x1", "run-1", "Ext", start, to, [{ path: "old", numRecords: 1n, sizeBytes: 1n }], OWNER);
        await begin("x1", "run-2", to, to);
        await store.failRun("x1", "run-2", { operationId: "op", name: "Export1", failureKind: "Failure", details: "d", isPermanent: false }, OWNER);
        await store.initExportState("x2", "db", "Export2");
        await store.acquireLease("x2", OWNER, 60_000);
        await store.beginRun("x2", "run-stuck", to, to);
        const old = clock;
        clock += 1000;
        await begin("x1", "run-3", to, to);
        await store.commitRun("x1", "run-3", "Ext", to, to, [{ path: "new", numRecords: 1n, sizeBytes: 1n }], OWNER);

        clock = old + 14 * DAY + 1;
        // run-1, its artifact, run-2 and its failure.
        expect(await store.pruneHistory()).toBe(4);
        clock = old;
        expect((await store.listRuns([])).map((r) => r.runId)).toEqual(["run-stuck", "run-3"]);
        expect((await store.listArtifacts("x1")).map((a) => a.path)).toEqual(["new"]);
        expect(await store.listFailures("x1")).toEqual([]);
        // What it prunes is only what is past retention: a second pass finds nothing.
        clock = old + 14 * DAY + 1;
        expect(await store.pruneHistory()).toBe(0);
      });

      it("resetCheckpoint moves the checkpoint and records it in the failures history, unless a run holds the export", async () => {
        await begin("x1", "run-1", start, to);
        await store.commitRun("x1", "run-1", "Ext", start, to, [], OWNER);
        expect(await store.resetCheckpoint("x1", "Export1", start, "by aaduser=admin")).toBe(to);
        expect((await state()).checkpointCursor).toBe(start);
        expect(await store.listFailures("x1")).toEqual([
          expect.objectContaining({ failureKind: "CursorReset", isPermanent: false, details: `checkpoint moved from ${to} to ${start} by aaduser=admin; the next run exports what comes after it` }),
        ]);
        // The next run covers the range again.
        expect((await store.startRun({ exportId: "x1", name: "Export1", runId: "run-2", owner: OWNER, leaseTtlMs: 60_000, upTo: (c) => c }))!.from).toBe(start);
        // Its lease is held: no reset meanwhile, and nothing changes.
        await expect(store.resetCheckpoint("x1", "Export1", 0n, "")).rejects.toThrow("has a run in flight");
        expect((await state()).checkpointCursor).toBe(start);
        await store.releaseLease("x1", OWNER);
        await expect(store.resetCheckpoint("x1", "Export1", to + 1_000_000n, "")).rejects.toThrow("is beyond the current cursor");
        await expect(store.resetCheckpoint("gone", "Gone", 0n, "")).rejects.toThrow("no longer exists");
      });

      it("backfills the range before the start cursor batch by batch, each committed once among the export's artifacts", async () => {
        await expect(store.createBackfill("bf-0", "x1", "db", "Export1", start, "{}")).rejects.toThrow("nothing before it to backfill");
        const created = await store.createBackfill("bf-1", "x1", "db", "Export1", 0n, '{"kind":"Backfill"}');
        expect(created).toMatchObject({ operationId: "bf-1", exportId: "x1", state: "InProgress", from: 0n, to: start, done: 0n, batchesTotal: 0n });
        await expect(store.createBackfill("bf-2", "x1", "db", "Export1", 0n, "{}")).rejects.toThrow("has a backfill in progress (operation bf-1)");
        await store.setBackfillTotals("bf-1", 10n, 2n);
        expect((await store.claimOperation("sched", 60_000))?.operation.operationId).toBe("bf-1");
        await store.journalPending("bf-1", "bf-1", ["https://acct/c/b1.csv"]);
        const batch = [{ path: "https://acct/c/b1.csv", numRecords: 4n, sizeBytes: 40n }];
        await expect(store.commitBackfillBatch("bf-1", "other", "Ext", 0n, start - 5n, batch, 4n)).rejects.toThrow("no longer this scheduler's");
        await store.commitBackfillBatch("bf-1", "sched", "Ext", 0n, start - 5n, batch, 4n);
        // The same batch again (a retry whose first commit landed) is refused: nothing twice.
        await expect(store.commitBackfillBatch("bf-1", "sched", "Ext", 0n, start - 5n, batch, 4n)).rejects.toThrow("committed already");
        expect(await store.backfill("bf-1")).toMatchObject({ done: start - 5n, recordsDone: 4n, recordsTotal: 10n, batchesDone: 1n, batchesTotal: 2n });
        expect((await store.listArtifacts("x1")).map((a) => a.path)).toEqual(["https://acct/c/b1.csv"]);
        expect(await store.pendingArtifacts("bf-1")).toEqual([]);
        // The continuous checkpoint is the runs' alone.
        expect((await state()).checkpointCursor).toBe(start);
        // While it runs, the checkpoint is not reset under it.
        await store.releaseLease("x1", OWNER);
        await expect(store.resetCheckpoint("x1", "Export1", 0n, "")).rejects.toThrow("has a backfill in progress");
        await store.finishOperation("bf-1", "sched", { state: "Failed", status: "stopped", externalTable: "Ext", artifacts: [], resources: "" });
        expect(await store.latestBackfills(["x1", "none"])).toEqual([expect.objectContaining({ operationId: "bf-1", state: "Failed" })]);
        // A new one without fromCursor goes on where it stopped: the committed batch is not exported again.
        const next = await store.createBackfill("bf-3", "x1", "db", "Export1", undefined, "{}");
        expect(next).toMatchObject({ from: start - 5n, done: start - 5n, to: start });
        await store.claimOperation("sched", 60_000);
        await store.commitBackfillBatch("bf-3", "sched", "Ext", start - 5n, start, [], 6n);
        await store.finishOperation("bf-3", "sched", { state: "Completed", status: "", externalTable: "Ext", artifacts: [], resources: "" });
        await expect(store.createBackfill("bf-4", "x1", "db", "Export1", undefined, "{}")).rejects.toThrow("has nothing left to backfill");
        // A checkpoint reset below the start bounds the next one: the runs export what comes after it.
        await store.resetCheckpoint("x1", "Export1", start - 10n, "");
        expect(await store.createBackfill("bf-5", "x1", "db", "Export1", 0n, "{}")).toMatchObject({ to: start - 10n });
      });

      it("commits a backfill batch whose lease expired while no other scheduler claimed it, and refuses one once another has", async () => {
        await store.createBackfill("bf-1", "x1", "db", "Export1", 0n, "{}");
        expect((await store.claimOperation("sched", 1_000))?.operation.operationId).toBe("bf-1");
        clock += 5_000;
        await store.commitBackfillBatch("bf-1", "sched", "Ext", 0n, start - 5n, [], 4n);
        expect((await store.claimOperation("other", 1_000))?.operation.operationId).toBe("bf-1");
        await expect(store.commitBackfillBatch("bf-1", "sched", "Ext", start - 5n, start, [], 6n)).rejects.toThrow("no longer this scheduler's");
        expect(await store.backfill("bf-1")).toMatchObject({ done: start - 5n, batchesDone: 1n });
      });

      it("dropExportState removes state, runs, artifacts and failures", async () => {
        await begin("x1", "run-1", start, to);
        await store.commitRun("x1", "run-1", "Ext", start, to, [{ path: "a", numRecords: 1n, sizeBytes: 1n }], OWNER);
        await begin("x1", "run-2", to, to);
        await store.failRun("x1", "run-2", { operationId: "op", name: "Export1", failureKind: "Failure", details: "d", isPermanent: false });
        await begin("x1", "run-3", to, to);
        await store.dropExportState("x1");
        expect(await store.getExportStates(["x1"])).toEqual([]);
        expect(await store.listArtifacts("x1")).toEqual([]);
        expect(await store.listFailures("x1")).toEqual([]);
        expect(await store.abandonedRuns()).toEqual([]);
      });

      it("survives close and reopen", async () => {
        await begin("x1", "run-1", start, to);
        await store.commitRun("x1", "run-1", "Ext", start, to, [{ path: "a", numRecords: 3n, sizeBytes: 30n }], OWNER);
        await begin("x1", "run-2", to, to);
        const before = { state: await state(), artifacts: await store.listArtifacts("x1") };

        await reopen();
        expect(await state()).toEqual(before.state);
        expect(await store.listArtifacts("x1")).toEqual(before.artifacts);
        clock += 60_000;
        expect(await store.abandonedRuns()).toEqual([{ exportId: "x1", runId: "run-2", name: "Export1" }]);
        expect(await store.currentCursor()).toBe(to);
        expect((await store.listExtents("db", ["T"], 0n)).extents.map((e) => e.extentId)).toEqual(["before", "after"]);
        // The clock survives too: a commit with the clock turned back still gets a later cursor.
        clock = T0 - DAY;
        expect(await store.commitExtent(extent("T", "later"))).toBe(to + 1n);
      });
    });

    describe("backlogs", () => {
      it("counts the records after each export's checkpoint in its fact tables, with the oldest cursor", async () => {
        const { startCursor: start } = await store.initExportState("x1", "db", "E1");
        const a = await store.commitExtent(extent("T", "a"));
        const b = await store.commitExtent(extent("T", "b"));
        await store.commitExtent(extent("Other", "c"));
        expect(await store.exportBacklogs([{ exportId: "x1", database: "db", factTables: ["T"] }])).toEqual([{ exportId: "x1", records: 20n, oldestCursor: a }]);
        await store.acquireLease("x1", "o", 60_000);
        await store.beginRun("x1", "r1", start, a);
        await store.commitRun("x1", "r1", "Ext", start, a, [], "o");
        expect(await store.exportBacklogs([{ exportId: "x1", database: "db", factTables: ["T", "Other"] }])).toEqual([{ exportId: "x1", records: 20n, oldestCursor: b }]);
        expect(await store.exportBacklogs([{ exportId: "x1", database: "db", factTables: ["None"] }])).toEqual([{ exportId: "x1", records: 0n, oldestCursor: undefined }]);
      });

      it("reads many exports' backlogs at once, each by its own checkpoint, in the order asked", async () => {
        const { startCursor: start } = await store.initExportState("x1", "db", "E1");
        await store.initExportState("x2", "db", "E2");
        const a = await store.commitExtent(extent("T", "a"));
        const b = await store.commitExtent(extent("T", "b"));
        await store.commitExtent({ ...extent("T", "elsewhere"), database: "other" });
        await store.acquireLease("x1", "o", 60_000);
        await store.beginRun("x1", "r1", start, a);
        await store.commitRun("x1", "r1", "Ext", start, a, [], "o");
        // 450 exports: more than one statement's worth, most of them without state.
        const asked = [
          { exportId: "x2", database: "db", factTables: ["T", "T"] },
          ...Array.from({ length: 448 }, (_, i) => ({ exportId: `none-${i}`, database: "db", factTables: ["T"] })),
          { exportId: "x0", database: "db", factTables: [] },
          { exportId: "x1", database: "db", factTables: ["T"] },
        ];
        const backlogs = await store.exportBacklogs(asked);
        expect(backlogs.map((b) => b.exportId)).toEqual(asked.map((e) => e.exportId));
        // A table named twice counts once.
        expect(backlogs[0]).toEqual({ exportId: "x2", records: 20n, oldestCursor: a });
        expect(backlogs.slice(1, -1).every((b) => b.records === 0n && b.oldestCursor === undefined)).toBe(true);
        expect(backlogs.at(-1)).toEqual({ exportId: "x1", records: 10n, oldestCursor: b });
        // An export asked for twice, with other tables, is answered twice, each as asked.
        expect(await store.exportBacklogs([
          { exportId: "x2", database: "db", factTables: ["T"] },
          { exportId: "x2", database: "db", factTables: ["None"] },
          { exportId: "x2", database: "db", factTables: ["T"] },
        ])).toEqual([
          { exportId: "x2", records: 20n, oldestCursor: a },
          { exportId: "x2", records: 0n, oldestCursor: undefined },
          { exportId: "x2", records: 20n, oldestCursor: a },
        ]);
        // Names are values, never SQL.
        expect(await store.exportBacklogs([{ exportId: "x2", database: "db", factTables: ["T') --", "\\'"] }])).toEqual([{ exportId: "x2", records: 0n, oldestCursor: undefined }]);
      });
    });

    describe("nodes", () => {
      it("lists the nodes heard from lately, by id, each at its last address", async () => {
        await store.heartbeat("node-b", "10.0.0.2:50051");
        await store.heartbeat("node-a", "10.0.0.1:50051");
        clock += 5_000;
        await store.heartbeat("node-b", "10.0.0.2:50061");
        expect(await store.liveNodes(10_000)).toEqual([
          { nodeId: "node-a", address: "10.0.0.1:50051" },
          { nodeId: "node-b", address: "10.0.0.2:50061" },
        ]);
        clock += 6_000;
        expect(await store.liveNodes(10_000)).toEqual([{ nodeId: "node-b", address: "10.0.0.2:50061" }]);
      });
    });

    describe("leases and the pending-artifact journal", () => {
      beforeEach(async () => {
        await store.initExportState("x2", "db", "Export2");
      });

      /** Run `run-a` of x2 over one new extent, under owner a's lease of `ttlMs`. */
      async function runUnderLease(extentId: string, ttlMs: number): Promise<{ from: bigint; to: bigint }> {
        const from = (await store.getExportStates(["x2"]))[0]!.checkpointCursor;
        const to = await store.commitExtent(extent("T", extentId));
        expect(await store.acquireLease("x2", "a", ttlMs)).toBe(true);
        await store.beginRun("x2", "run-a", from, to);
        return { from, to };
      }

      it("gives an export's lease to one owner at a time, until it expires", async () => {
        expect(await store.acquireLease("x2", "a", 10_000)).toBe(true);
        expect(await store.acquireLease("x2", "b", 10_000)).toBe(false);
        expect(await store.acquireLease("x2", "a", 10_000)).toBe(true);
        clock += 9_000;
        expect(await store.renewLease("x2", "a", 10_000)).toBe(true);
        clock += 9_000;
        expect(await store.acquireLease("x2", "b", 10_000)).toBe(false);
        clock += 2_000;
        // a stopped renewing (paused, crashed): the lease expired and b may take it.
        expect(await store.acquireLease("x2", "b", 10_000)).toBe(true);
        expect(await store.renewLease("x2", "a", 10_000)).toBe(false);
        await store.releaseLease("x2", "a");
        expect(await store.acquireLease("x2", "a", 10_000)).toBe(false);
        await store.releaseLease("x2", "b");
        expect(await store.acquireLease("x2", "a", 10_000)).toBe(true);
      });

      it(shared ? "keeps other nodes' leases when a process starts again" : "frees every lease when the store's process starts again", async () => {
        expect(await store.acquireLease("x2", "dead-process", 60_000)).toBe(true);
        await store.releaseAllLeases();
        expect(await store.acquireLease("x2", "new-process", 60_000)).toBe(!shared);
      });

      it("refuses a commit from an owner whose lease was lost mid-run, and changes nothing", async () => {
        const { from, to } = await runUnderLease("x2-data", 1_000);
        clock += 5_000;
        expect(await store.acquireLease("x2", "b", 1_000)).toBe(true);
        await expect(store.commitRun("x2", "run-a", "Ext", from, to, [{ path: "p", numRecords: 1n, sizeBytes: 1n }], "a")).rejects.toThrow(/lease .* was lost/);
        expect((await store.getExportStates(["x2"]))[0]!.checkpointCursor).toBe(from);
        expect(await store.listArtifacts("x2")).toEqual([]);
      });

      it("keeps an expired lease its owner's until another takes it: the owner renews it late, and its run commits", async () => {
        const { from, to } = await runUnderLease("x2-late", 1_000);
        // The renewals were held up (every libuv thread busy with long statements): expired.
        clock += 5_000;
        expect((await store.runRange("x2", "Export2", "b", (c) => c)).leasedElsewhere).toBe(false);
        expect(await store.renewLease("x2", "a", 1_000)).toBe(true);
        clock += 5_000;
        await store.commitRun("x2", "run-a", "Ext", from, to, [{ path: "p", numRecords: 1n, sizeBytes: 1n }], "a");
        expect((await store.getExportStates(["x2"]))[0]).toMatchObject({ checkpointCursor: to, isRunning: false });
        expect((await store.listArtifacts("x2")).map((a) => a.path)).toEqual(["p"]);
        // Its commit released it: renewing it now is refused.
        expect(await store.renewLease("x2", "a", 1_000)).toBe(false);
      });

      it("frees the expired lease of a run it records abandoned, so that run's late commit is refused and changes nothing", async () => {
        const { from, to } = await runUnderLease("x2-slow", 1_000);
        clock += 5_000;
        expect(await store.recoverAbandonedRuns()).toBe(1);
        expect(await store.renewLease("x2", "a", 1_000)).toBe(false);
        await expect(store.commitRun("x2", "run-a", "Ext", from, to, [{ path: "p", numRecords: 1n, sizeBytes: 1n }], "a")).rejects.toThrow(/lease .* was lost/);
        expect((await store.getExportStates(["x2"]))[0]!.checkpointCursor).toBe(from);
        expect(await store.listArtifacts("x2")).toEqual([]);
        expect((await store.listRuns([])).find((r) => r.runId === "run-a")).toMatchObject({ result: "Failed" });
      });

      it("says why a superseded run never ended: its lease let go, or its own scheduler's next run opened", async () => {
        const args = { exportId: "x2", name: "Export2", owner: "a", leaseTtlMs: 60_000, upTo: (c: bigint) => c };
        // Let go with the run left Running (its failure could not be recorded).
        await store.startRun({ ...args, runId: "run-a" });
        await store.releaseLease("x2", "a");
        await store.startRun({ ...args, runId: "run-b", owner: "b" });
        // b's next run opens while its own last one is still Running.
        await store.startRun({ ...args, runId: "run-c", owner: "b" });
        const details = Object.fromEntries((await store.listRuns(["x2"])).map((r) => [r.runId, r.details]));
        expect(details["run-a"]).toMatch(/^the export's lease was let go before the run's end was recorded, so this run could not commit/);
        expect(details["run-b"]).toMatch(/^its scheduler started the export's next run without recording how this one ended, so this run could not commit/);
        // A drop held the export (the run's lease had expired) and its hold expired too.
        clock += 120_000;
        expect(await store.holdForDrop("x2", "drop/1")).toMatchObject({ runInFlight: false });
        clock += 120_000;
        await store.startRun({ ...args, runId: "run-d", owner: "d" });
        expect((await store.listRuns(["x2"])).find((r) => r.runId === "run-c")!.details).toMatch(/^a drop of the export held its lease, and its hold expired, so this run could not commit/);
      });

      it("fails the run whose expired lease another owner's run takes, as that run opens: it can no longer commit", async () => {
        const started = await store.startRun({ exportId: "x2", name: "Export2", runId: "run-a", owner: "a", leaseTtlMs: 1_000, upTo: (c) => c });
        clock += 5_000;
        expect(await store.startRun({ exportId: "x2", name: "Export2", runId: "run-b", owner: "b", leaseTtlMs: 1_000, upTo: (c) => c })).toBeDefined();
        const runs = await store.listRuns(["x2"]);
        expect(runs.find((r) => r.runId === "run-a")).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease expired unrenewed and another scheduler took the export/) });
        expect(runs.find((r) => r.runId === "run-b")).toMatchObject({ result: "Running" });
        await expect(store.commitRun("x2", "run-a", "Ext", started!.from, started!.to, [], "a")).rejects.toThrow(/lease .* was lost/);
        // Its own failure, recorded after, neither adds a record nor marks the export's last run failed again.
        await store.failRun("x2", "run-a", { operationId: "run-a", name: "Export2", failureKind: "Failure", details: "lease lost", isPermanent: false }, "a");
        expect((await store.listFailures("x2")).map((f) => f.operationId)).toEqual(["run-a"]);
        expect((await store.listRuns(["x2"])).find((r) => r.runId === "run-a")!.details).toMatch(/another scheduler took the export/);
        // Its owner's next run fails it too: a scheduler runs one run of an export at a time, so
        // that one is over, its end not recorded.
        clock += 5_000;
        expect(await store.startRun({ exportId: "x2", name: "Export2", runId: "run-c", owner: "b", leaseTtlMs: 1_000, upTo: (c) => c })).toBeDefined();
        expect((await store.listRuns(["x2"])).find((r) => r.runId === "run-b")).toMatchObject({ result: "Failed", details: expect.stringMatching(/^its scheduler started the export's next run/) });
      });

      it("fails, as the next run opens, a run let go with its lease while still Running (its failure could not be recorded)", async () => {
        await store.startRun({ exportId: "x2", name: "Export2", runId: "let-go", owner: "a", leaseTtlMs: 60_000, upTo: (c) => c });
        await store.releaseLease("x2", "a");
        clock += 1_000;
        if (shared) {
          // Not yet that long ago for a sweep; then it is.
          expect(await store.recoverAbandonedRuns(5_000)).toBe(0);
          clock += 5_000;
          expect(await store.recoverAbandonedRuns(5_000)).toBe(1);
          expect((await store.listRuns(["x2"]))[0]).toMatchObject({ runId: "let-go", result: "Failed" });
        }
        expect(await store.startRun({ exportId: "x2", name: "Export2", runId: "next", owner: "a", leaseTtlMs: 60_000, upTo: (c) => c })).toBeDefined();
        expect(Object.fromEntries((await store.listRuns(["x2"])).map((r) => [r.runId, r.result]))).toEqual({ "let-go": "Failed", next: "Running" });
        // An export whose last run ended opens the next without failing anything.
        await store.failRun("x2", "next", { operationId: "next", name: "Export2", failureKind: "Failure", details: "d", isPermanent: false }, "a");
        clock += 1_000;
        await store.startRun({ exportId: "x2", name: "Export2", runId: "third", owner: "a", leaseTtlMs: 60_000, upTo: (c) => c });
        expect((await store.listFailures("x2")).map((f) => f.operationId)).toEqual(["let-go", "next"]);
      });

      it(shared ? "a sweep fails only runs whose lease expired at least that long ago, and frees no live lease" : "a sweep does nothing: the one process holding the store runs its runs itself", async () => {
        await store.initExportState("x3", "db", "Export3");
        await store.initExportState("x4", "db", "Export4");
        await store.startRun({ exportId: "x2", name: "Export2", runId: "long-gone", owner: "a", leaseTtlMs: 1_000, upTo: (c) => c });
        clock += 10_000;
        await store.startRun({ exportId: "x3", name: "Export3", runId: "just-late", owner: "b", leaseTtlMs: 1_000, upTo: (c) => c });
        await store.startRun({ exportId: "x4", name: "Export4", runId: "live", owner: "c", leaseTtlMs: 60_000, upTo: (c) => c });
        clock += 2_000;
        expect(await store.recoverAbandonedRuns(5_000)).toBe(shared ? 1 : 0);
        const results = Object.fromEntries((await store.listRuns(["x2", "x3", "x4"])).map((r) => [r.runId, r.result]));
        expect(results).toEqual({ "long-gone": shared ? "Failed" : "Running", "just-late": "Running", live: "Running" });
        // Swept, it can no longer commit; left, it still may (late renewals).
        expect(await store.renewLease("x2", "a", 1_000)).toBe(!shared);
        // The late one renews and commits; the live lease was not touched.
        expect(await store.renewLease("x3", "b", 1_000)).toBe(true);
        expect((await store.getExportStates(["x4"]))[0]!.isRunning).toBe(true);
        if (shared) expect((await store.listRuns(["x2"]))[0]!.details).toMatch(/stopped renewing its lease more than 5 s ago/);
      });

      it("fails, as a scheduler starts, a run that a later run superseded, though the later one holds the lease live", async () => {
        await store.startRun({ exportId: "x2", name: "Export2", runId: "older", owner: "a", leaseTtlMs: 1_000, upTo: (c) => c });
        // The row as a version without failSupersededRun left it: the later run opened, the older one still Running.
        clock += 5_000;
        await store.acquireLease("x2", "b", 60_000);
        await store.beginRun("x2", "later", 0n, 0n);
        expect(await store.abandonedRuns()).toEqual([{ exportId: "x2", runId: "older", name: "Export2" }]);
        await store.recoverAbandonedRuns();
        // On DuckDB a starting scheduler's store held no run of another process: every lease was a dead one's.
        expect(Object.fromEntries((await store.listRuns(["x2"])).map((r) => [r.runId, r.result]))).toEqual({ older: "Failed", later: shared ? "Running" : "Failed" });
      });

      it("holds an export for its drop: a run whose lease expired can no longer commit, and the journaled files come with the hold", async () => {
        const { from, to } = await runUnderLease("x2-drop", 1_000);
        await store.journalPending("x2", "run-a", ["blob/a.parquet"]);
        clock += 5_000;
        expect(await store.holdForDrop("x2", "drop-1")).toEqual({ runInFlight: false, pending: [{ runId: "run-a", path: "blob/a.parquet" }] });
        await expect(store.commitRun("x2", "run-a", "Ext", from, to, [{ path: "blob/a.parquet", numRecords: 1n, sizeBytes: 1n }], "a")).rejects.toThrow(/lease .* was lost/);
        expect(await store.listArtifacts("x2")).toEqual([]);
        // No run starts under the hold; a drop that stopped part way lets it go, and runs go on.
        expect(await store.startRun({ exportId: "x2", name: "Export2", runId: "run-b", owner: "b", leaseTtlMs: 1_000, upTo: (c) => c })).toBeUndefined();
        await store.releaseLease("x2", "drop-1");
        expect(await store.startRun({ exportId: "x2", name: "Export2", runId: "run-b", owner: "b", leaseTtlMs: 1_000, upTo: (c) => c })).toMatchObject({ from, to });
        await expect(store.holdForDrop("x2", "")).rejects.toThrow("needs an owner");
      });

      it("journals a run's files, when it names its owner, only while that owner holds the export's lease", async () => {
        await runUnderLease("x2-fenced", 1_000);
        // Expired, but no one took it: still the run's own.
        clock += 5_000;
        await store.journalPending("x2", "run-a", ["blob/a1.parquet", "blob/a2.parquet"], "a");
        // Another owner took it (the run was fenced out): refused, nothing journaled.
        expect(await store.acquireLease("x2", "b", 60_000)).toBe(true);
        await expect(store.journalPending("x2", "run-a", ["blob/a3.parquet"], "a")).rejects.toThrow(/lease on export x2 was lost/);
        // Held for a drop, then dropped: refused too.
        await store.releaseLease("x2", "b");
        expect(await store.holdForDrop("x2", "drop-1")).toMatchObject({ runInFlight: false });
        await expect(store.journalPending("x2", "run-a", ["blob/a4.parquet"], "a")).rejects.toThrow(/lease on export x2 was lost/);
        await expect(store.journalPending("gone", "run-g", ["blob/g.parquet"], "a")).rejects.toThrow(/the export was dropped during the run/);
        expect(await store.pendingArtifacts("gone")).toEqual([]);
        // Unfenced (a one-shot operation, a run journaling its own files again): written whoever holds what.
        await store.journalPending("x2", "run-a", ["blob/a5.parquet"]);
        expect((await store.pendingArtifacts("x2")).map((p) => p.path)).toEqual(["blob/a1.parquet", "blob/a2.parquet", "blob/a5.parquet"]);
      });

      it("leaves a run in flight under a live lease to the drop's purge, and holds nothing", async () => {
        const { from, to } = await runUnderLease("x2-live", 10_000);
        await store.journalPending("x2", "run-a", ["blob/a.parquet"]);
        expect(await store.holdForDrop("x2", "drop-1")).toEqual({ runInFlight: true, pending: [] });
        expect(await store.holdForDrop("gone", "drop-1")).toEqual({ runInFlight: false, pending: [] });
        await store.commitRun("x2", "run-a", "Ext", from, to, [{ path: "blob/a.parquet", numRecords: 1n, sizeBytes: 1n }], "a");
        expect((await store.getExportStates(["x2"]))[0]!.checkpointCursor).toBe(to);
      });

      it("says a run may be in flight when a drop purged the state and stopped, and the journal still lists files", async () => {
        await runUnderLease("x2-purged", 10_000);
        await store.journalPending("x2", "run-a", ["blob/a.parquet"], "a");
        await store.dropExportState("x2");
        expect(await store.holdForDrop("x2", "drop-2")).toEqual({ runInFlight: true, pending: [] });
        await store.clearPending("x2", ["blob/a.parquet"]);
        expect(await store.holdForDrop("x2", "drop-2")).toEqual({ runInFlight: false, pending: [] });
      });

      it("records an abandoned run failed only if it still is: not once it committed, nor while it is the latest and its lease is live again", async () => {
        const listed = { exportId: "x2", runId: "run-a", name: "Export2" };
        const { from, to } = await runUnderLease("x2-listed", 1_000);
        clock += 5_000;
        // Listed while expired, then renewed late: its owner is alive.
        expect(await store.renewLease("x2", "a", 1_000)).toBe(true);
        expect(await store.failAbandonedRun(listed)).toBe(false);
        // Committed after it was listed: it stays Completed.
        await store.commitRun("x2", "run-a", "Ext", from, to, [], "a");
        expect(await store.failAbandonedRun(listed)).toBe(false);
        expect((await store.listRuns([])).find((r) => r.runId === "run-a")).toMatchObject({ result: "Completed" });
        expect(await store.listFailures("x2")).toEqual([]);
      });

      it("records an older abandoned run failed without touching the lease a later run holds", async () => {
        const { from, to } = await runUnderLease("x2-old", 1_000);
        clock += 5_000;
        // b took the export over (run-a's owner stopped): its run is the latest, under its lease.
        expect(await store.acquireLease("x2", "b", 1_000)).toBe(true);
        await store.beginRun("x2", "run-b", from, to);
        clock += 5_000;
        expect(await store.failAbandonedRun({ exportId: "x2", runId: "run-a", name: "Export2" })).toBe(true);
        // b's lease expired but is still b's: its run commits.
        await store.commitRun("x2", "run-b", "Ext", from, to, [], "b");
        const runs = await store.listRuns([]);
        expect(runs.find((r) => r.runId === "run-a")).toMatchObject({ result: "Failed" });
        expect(runs.find((r) => r.runId === "run-b")).toMatchObject({ result: "Completed" });
      });

      it("keeps journaled artifacts of a crashed attempt until they are cleared, and drops them at commit", async () => {
        const from = (await store.getExportStates(["x2"]))[0]!.checkpointCursor;
        const to = await store.commitExtent(extent("T", "x2-more"));
        expect(await store.acquireLease("x2", "a", 60_000)).toBe(true);
        // Attempt 1: journaled, uploaded, then the process died before the commit.
        await store.beginRun("x2", "run-1", from, to);
        await store.journalPending("x2", "run-1", ["blob/1.parquet", "blob/2.parquet"]);
        expect(await store.pendingArtifacts("x2")).toEqual([
          { runId: "run-1", path: "blob/1.parquet" },
          { runId: "run-1", path: "blob/2.parquet" },
        ]);
        // Attempt 2 deletes those first, then writes and commits its own.
        await store.clearPending("x2", ["blob/1.parquet", "blob/2.parquet"]);
        await store.beginRun("x2", "run-2", from, to);
        await store.journalPending("x2", "run-2", ["blob/3.parquet"]);
        await store.commitRun("x2", "run-2", "Ext", from, to, [{ path: "blob/3.parquet", numRecords: 1n, sizeBytes: 1n }], "a");
        expect(await store.pendingArtifacts("x2")).toEqual([]);
        expect((await store.listArtifacts("x2")).map((a) => a.path)).toEqual(["blob/3.parquet"]);
      });

      it("drops at commit the journal entries of the files it records that an earlier attempt journaled (a Delta log's commit of its txn), and no others", async () => {
        const from = (await store.getExportStates(["x2"]))[0]!.checkpointCursor;
        const to = await store.commitExtent(extent("T", "x2-logged"));
        expect(await store.acquireLease("x2", "a", 60_000)).toBe(true);
        await store.beginRun("x2", "run-1", from, to);
        await store.journalPending("x2", "run-1", ["blob/in-log.parquet", "blob/not-in-log.parquet"]);
        await store.journalPending("other", "run-o", ["blob/in-log.parquet"]);
        await store.beginRun("x2", "run-2", from, to);
        await store.commitRun("x2", "run-2", "Ext", from, to, [{ path: "blob/in-log.parquet", numRecords: 1n, sizeBytes: 1n }], "a");
        expect(await store.pendingArtifacts("x2")).toEqual([{ runId: "run-1", path: "blob/not-in-log.parquet" }]);
        expect(await store.pendingArtifacts("other")).toEqual([{ runId: "run-o", path: "blob/in-log.parquet" }]);
      });

      it("startRun opens a run under the lease in one step, and its commit releases the lease", async () => {
        const from = (await store.getExportStates(["x2"]))[0]!.checkpointCursor;
        await store.journalPending("x2", "crashed", ["blob/old.parquet"]);
        const to = await store.commitExtent(extent("T", "x2-start"));
        const args = { exportId: "x2", name: "Export2", owner: "a", leaseTtlMs: 60_000, upTo: (current: bigint) => current };
        const started = await store.startRun({ ...args, runId: "run-1" });
        expect(started).toEqual({ runNumber: 1n, from, to, startedAt: expect.any(Date), completedRuns: 0n, pending: [{ runId: "crashed", path: "blob/old.parquet" }] });
        // Another owner is refused and nothing of its run is recorded.
        expect(await store.startRun({ ...args, runId: "run-x", owner: "b" })).toBeUndefined();
        const [state] = await store.getExportStates(["x2"]);
        expect(state!.runCount).toBe(1n);
        // The start it answers is the one the state records: the scheduler times the next run from it.
        expect(state!.lastRunStart).toEqual(started!.startedAt);

        await store.commitRun("x2", "run-1", "Ext", from, to, [], "a");
        // Lease gone with the commit: b may start now, from the new checkpoint; a range never runs backwards.
        const next = await store.startRun({ ...args, runId: "run-2", owner: "b", upTo: () => 0n });
        expect(next).toMatchObject({ runNumber: 2n, from: to, to, completedRuns: 1n });
        await store.failRun("x2", "run-2", { operationId: "op", name: "Export2", failureKind: "Failure", details: "d", isPermanent: false }, "b");
        expect(await store.acquireLease("x2", "c", 60_000)).toBe(true);
      });

      it("runRange reads the range a run would open on, and whether another owner holds the export, and opens nothing", async () => {
        const from = (await store.getExportStates(["x2"]))[0]!.checkpointCursor;
        const first = await store.commitExtent(extent("T", "x2-r1"));
        const second = await store.commitExtent(extent("T", "x2-r2"));
        expect(await store.runRange("x2", "Export2", "a", (current) => current)).toEqual({ from, to: second, leasedElsewhere: false });
        // forcedLatency's bound; never below the checkpoint.
        expect(await store.runRange("x2", "Export2", "a", () => first)).toEqual({ from, to: first, leasedElsewhere: false });
        expect(await store.runRange("x2", "Export2", "a", () => 0n)).toEqual({ from, to: from, leasedElsewhere: false });
        expect((await store.getExportStates(["x2"]))[0]!.runCount).toBe(0n);
        // Another owner's lease shows, until it expires; the asker's own does not.
        expect(await store.acquireLease("x2", "b", 1_000)).toBe(true);
        expect((await store.runRange("x2", "Export2", "a", (c) => c)).leasedElsewhere).toBe(true);
        expect((await store.runRange("x2", "Export2", "b", (c) => c)).leasedElsewhere).toBe(false);
        clock += 1_000;
        expect((await store.runRange("x2", "Export2", "a", (c) => c)).leasedElsewhere).toBe(false);
        // The run then opens on the same range, given its upper end.
        expect(await store.startRun({ exportId: "x2", name: "Export2", runId: "r", owner: "a", leaseTtlMs: 1_000, upTo: (c) => (c < first ? c : first) })).toMatchObject({ from, to: first });
        await store.dropExportState("x2");
        await expect(store.runRange("x2", "Export2", "a", (c) => c)).rejects.toThrow("continuous export 'Export2' no longer exists");
      });

      it("startRun refuses an export without state (being dropped) and records nothing", async () => {
        await store.dropExportState("x2");
        await expect(store.startRun({ exportId: "x2", name: "Export2", runId: "r", owner: "a", leaseTtlMs: 1_000, upTo: (c) => c })).rejects.toThrow(
          "continuous export 'Export2' no longer exists",
        );
        expect(await store.getExportStates(["x2"])).toEqual([]);
        expect(await store.abandonedRuns()).toEqual([]);
        // The lease is the export's: none without its state, and none left behind once it is back.
        expect(await store.acquireLease("x2", "b", 1_000)).toBe(false);
        await store.initExportState("x2", "db", "Export2");
        expect(await store.acquireLease("x2", "b", 1_000)).toBe(true);
      });

      it("counts failures since the last success", async () => {
        await store.addFailure("x2", { operationId: "op1", name: "Export2", failureKind: "Failure", details: "gone", isPermanent: true });
        clock += 1000;
        await store.addFailure("x2", { operationId: "op2", name: "Export2", failureKind: "Failure", details: "still gone", isPermanent: true });
        expect((await store.failuresSinceLastSuccess("x2")).map((f) => f.operationId)).toEqual(["op1", "op2"]);
      });
    });

    describe("an export the scheduler disabled", () => {
      it("keeps the reason until it is cleared, and across a reopen", async () => {
        await store.initExportState("x9", "db", "Export9");
        await store.setSystemDisabled("x9", "disabled automatically: storage gone");
        expect((await store.getExportStates(["x9"]))[0]!.systemDisabled).toBe("disabled automatically: storage gone");
        await store.close();
        store = await open(dir, () => clock);
        expect((await store.getExportStates(["x9"]))[0]!.systemDisabled).toBe("disabled automatically: storage gone");
        // Neither a run nor the read of its range goes ahead meanwhile.
        await expect(store.runRange("x9", "Export9", "a", (c) => c)).rejects.toThrow("continuous export 'Export9' was disabled automatically: storage gone");
        await expect(store.startRun({ exportId: "x9", name: "Export9", runId: "r", owner: "a", leaseTtlMs: 1_000, upTo: (c) => c })).rejects.toThrow("was disabled automatically");
        await store.setSystemDisabled("x9", "");
        expect((await store.getExportStates(["x9"]))[0]!.systemDisabled).toBe("");
        expect(await store.runRange("x9", "Export9", "a", (c) => c)).toMatchObject({ to: expect.any(BigInt) });
      });
    });
  });
}
