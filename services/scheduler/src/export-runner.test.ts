import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { ExportSpecSchema, type ExportSpec } from "@spillway/proto";
import type { SpillwayConfig } from "@spillway/config";
import { CursorService } from "@spillway/proto";
import { createLocalClient, type RetryOptions, type ServiceClient } from "@spillway/rpc";
import { createCursorModule } from "../../cursor/src/index.js";
import { ExportRunner, type RunnerPeers } from "./export-runner.js";
import { cursorLedger, type RunLedger } from "./run-ledger.js";

// The run orchestration against a real cursor store and fakes of the three peers it calls,
// so each step of a run, and what happens between two steps, is under the test's control.

let dir: string;
/** The real cursor service (commit log and ledger), reached as Spillway does: through its client. */
let cursorModule: Awaited<ReturnType<typeof createCursorModule>>;
let cursor: ServiceClient<typeof CursorService>;
let ledger: RunLedger;
let clock: number;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spillway-runner-"));
  clock = Date.parse("2026-03-01T00:00:00Z");
  cursorModule = await createCursorModule({ dataDir: dir } as SpillwayConfig, { now: () => clock });
  cursor = createLocalClient(CursorService, cursorModule.handlers);
  ledger = cursorLedger(cursor);
});
afterEach(async () => {
  await cursorModule.stop();
  await rm(dir, { recursive: true, force: true });
});

const exportSpec = (): ExportSpec =>
  create(ExportSpecSchema, {
    id: "export-1",
    database: "db",
    name: "E",
    query: "SELECT * FROM T",
    factTables: ["T"],
    tables: [{ database: "db", name: "T", columns: [{ name: "Id", type: "long" }], ingestionTimePolicy: true }],
    externalTable: { name: "Lake", columns: [{ name: "Id", type: "long" }], dataFormat: "csv", connectionStrings: ["file:///tmp/lake"] },
    intervalBetweenRuns: durationFromMs(60_000),
  });

/** The export's state, as its creation makes it; its start cursor (the creation time: nothing was ingested yet). */
const initState = async (spec: ExportSpec) => BigInt((await cursor.initExportState({ exportId: spec.id, database: spec.database, name: spec.name })).state!.startCursor);

let extents = 0;
const ingest = async () =>
  BigInt((await cursor.commitExtent({ database: "db", table: "T", extentId: `e${++extents}`, path: `extents/e${extents}.parquet`, rowCount: 10n, sizeBytes: 100n })).cursor);

/** Another node's run takes the export, this run's lease long past (the clock moves 200 s). */
const anotherNodeTakesOver = async (spec: ExportSpec) => {
  clock += 200_000;
  expect(await ledger.startRun({ exportId: spec.id, name: spec.name, runId: "other-run", owner: "other-node", leaseTtlMs: 60_000 })).toBeDefined();
};

/** What each fake call reports it cost. */
const USAGE = {
  query: { cpuTimeUs: 1000n, peakProcessMemoryBytes: 5000n, peakDuckdbMemoryBytes: 300n, rowsRead: 10n, bytesRead: 100n },
  stage: { cpuTimeUs: 500n, peakProcessMemoryBytes: 7000n, peakDuckdbMemoryBytes: 200n, rowsRead: 0n, bytesRead: 0n },
  upload: { cpuTimeUs: 100n, peakProcessMemoryBytes: 6000n, peakDuckdbMemoryBytes: 0n, rowsRead: 0n, bytesRead: 0n },
};

/** Peers that do what a healthy Spillway does, with hooks where a test wants to step in. */
function fakePeers(spec: () => ExportSpec | undefined) {
  const calls = { spooled: [] as string[][][], staged: [] as Array<{ spoolHandle?: string; encodedFiles?: string[]; spoolRows?: bigint }>, uploaded: 0, deleted: [] as string[][], discarded: [] as string[], fenced: [] as bigint[] };
  /** deltaLogHas: whether a Delta log asked for a txn (FindDeltaCommit) has it. */
  const hooks = { duringQuery: async () => {}, upload: async (): Promise<void> => {}, deltaLogHas: false };
  const peers: RunnerPeers = {
    catalog: {
      listExportSpecs: async () => ({ specs: spec() ? [spec()!] : [] }) as never,
    },
    query: {
      executeToSpool: async (req) => {
        calls.spooled.push((req.factTables ?? []).map((f) => [f.table ?? "", f.afterCursor ?? "", f.upToCursor ?? ""]));
        await hooks.duringQuery();
        return { spoolHandle: req.spoolName, rowCount: 10n, encodedFiles: ["encoded/data_0.csv"], usage: USAGE.query } as never;
      },
      discardSpool: async (req) => (calls.discarded.push(req.spoolName ?? ""), {}) as never,
    },
    writer: {
      stageArtifacts: async (req) => (calls.staged.push({ spoolHandle: req.spoolHandle, encodedFiles: req.encodedFiles, spoolRows: req.spoolRows }), { artifacts: [{ path: `file:///tmp/lake/${req.nameStem}_0.csv`, numRecords: 10n, sizeInBytes: 50n }], alreadyCommitted: false, usage: USAGE.stage }) as never,
      uploadArtifacts: async (req) => {
        calls.uploaded++;
        await hooks.upload();
        // Each run's files are its own, as the writer names them after the run.
        return { artifacts: [{ path: `file:///tmp/lake/own-${req.stageId}.csv`, numRecords: 10n, sizeInBytes: 50n }], usage: USAGE.upload } as never;
      },
      discardStage: async () => ({}) as never,
      deleteArtifacts: async (req) => (calls.deleted.push(req.paths ?? []), {}) as never,
      findDeltaCommit: async (req) => (calls.fenced.push(req.fence ? (req.txnVersion ?? 0n) : -1n), { committed: hooks.deltaLogHas, artifacts: [] }) as never,
    },
  };
  return { peers, calls, hooks };
}

const noRetry: RetryOptions = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };

describe("ExportRunner", () => {
  it("commits the range it fixed at the start: a record ingested during the run waits for the next one", async () => {
    const spec = exportSpec();
    const start = await initState(spec);
    const first = await ingest();
    let lateCursor = 0n;
    const { peers, calls, hooks } = fakePeers(() => spec);
    hooks.duringQuery = async () => {
      lateCursor = await ingest();
    };
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });

    const run = await runner.run(spec);
    expect(run).toMatchObject({ result: "Completed", to: first });
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(first);
    expect(lateCursor).toBeGreaterThan(first);

    hooks.duringQuery = async () => {};
    const next = await runner.run(spec);
    expect(next).toMatchObject({ result: "Completed", from: first, to: lateCursor });
    // The query service was asked for exactly each run's range of the fact table, and each spool was let go.
    expect(calls.spooled).toEqual([[["T", String(start), String(first)]], [["T", String(first), String(lateCursor)]]]);
    expect(calls.discarded).toEqual([run.runId, next.runId]);
    // The writer stages what the query service spooled, by handle, with the files it encoded in one pass.
    expect(calls.staged).toEqual([run.runId, next.runId].map((handle) => ({ spoolHandle: handle, encodedFiles: ["encoded/data_0.csv"], spoolRows: 10n })));
  });

  it("leaves the checkpoint where it was when an upload fails, and removes that attempt's files before the next", async () => {
    const spec = exportSpec();
    const start = await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    hooks.upload = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage timed out");
    };
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });

    const failed = await runner.run(spec);
    expect(failed).toMatchObject({ result: "Failed", details: expect.stringContaining("storage timed out") });
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(start);
    const failures = (await cursor.listFailures({ exportId: spec.id })).failures;
    expect(failures).toEqual([expect.objectContaining({ failureKind: "PartialFailure", isPermanent: false })]);
    // The failed run cleaned up after itself already; the journal is empty again.
    expect(calls.deleted).toHaveLength(1);
    expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);

    hooks.upload = async () => {};
    expect((await runner.run(spec)).result).toBe("Completed");
  });

  it("records what each run cost: the calls' usage summed or at its peak, the rows it wrote, and its phases in order", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, hooks } = fakePeers(() => spec);
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
    const done = await runner.run(spec);
    await ingest();
    hooks.upload = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage timed out");
    };
    const failed = await runner.run(spec);

    const { runs } = await cursor.listRuns({ exportIds: [spec.id] });
    expect(runs.map((r) => [r.runId, r.result])).toEqual([
      [done.runId, "Completed"],
      [failed.runId, "Failed"],
    ]);
    expect(runs[0]!.resources).toMatchObject({
      usage: { cpuTimeUs: 1600n, peakProcessMemoryBytes: 7000n, peakDuckdbMemoryBytes: 300n, rowsRead: 10n, bytesRead: 100n },
      rowsWritten: 10n,
      bytesWritten: 50n,
      parts: 1,
    });
    expect(runs[0]!.resources!.phases.map((p) => p.name)).toEqual(["range", "start", "query", "stage", "journal", "upload", "check"]);
    // A failed run keeps what it cost until it failed, and wrote nothing.
    expect(runs[1]!.resources).toMatchObject({ usage: { cpuTimeUs: 1500n }, rowsWritten: 0n });
    expect(runs[1]!.resources!.phases.map((p) => p.name)).toEqual(["range", "start", "query", "stage", "journal", "upload"]);
    expect(runs[1]!.details).toContain("storage timed out");
  });

  it("fenced: a run that lost its lease while paused commits nothing and deletes what it uploaded, though its journal was cleared by the new owner", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    const paused = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, ownerId: "paused-node", leaseTtlMs: 1000 });
    const other = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, ownerId: "other-node", leaseTtlMs: 1000 });
    let takeover: Awaited<ReturnType<ExportRunner["run"]>> | undefined;
    // The paused node's upload is under way when its lease expires and another node runs the export.
    hooks.upload = async () => {
      if (takeover) return;
      clock += 5000;
      hooks.upload = async () => {};
      takeover = await other.run(spec);
    };
    const fenced = await paused.run(spec);
    expect(takeover).toMatchObject({ result: "Completed" });
    expect(fenced).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease .* was lost/) });
    // The new owner removed the paused attempt's journaled files first; the paused node, its own (by name, as its journal is gone).
    const pausedStaged = `file:///tmp/lake/${spec.id.slice(0, 8)}_1_${fenced.runId.slice(0, 8)}_0.csv`;
    expect(calls.deleted).toEqual([[pausedStaged], [pausedStaged]]);
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(takeover!.to);
    expect((await cursor.listArtifacts({ exportId: spec.id })).artifacts).toHaveLength(1);
  });

  it("late: a run whose lease expired while no one took the export (its renewals held up) commits", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    const late = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, ownerId: "late-node", leaseTtlMs: 1000 });
    hooks.upload = async () => {
      clock += 5000;
    };
    const run = await late.run(spec);
    expect(run).toMatchObject({ result: "Completed" });
    expect(calls.deleted).toEqual([]);
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(run.to);
    expect((await cursor.listArtifacts({ exportId: spec.id })).artifacts).toHaveLength(1);
  });

  it("fenced during its query: a renewal that finds the lease taken stops the run before it stages or uploads anything", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    // The run's opening and the heartbeat's answers, seen as the runner sees them.
    let renewedFalse!: () => void;
    const lost = new Promise<void>((resolve) => (renewedFalse = resolve));
    let runOpened!: () => void;
    const opened = new Promise<void>((resolve) => (runOpened = resolve));
    const watched: RunLedger = {
      ...ledger,
      startRun: async (...args) => {
        const started = await ledger.startRun(...args);
        runOpened();
        return started;
      },
      renewLease: async (...args) => {
        const held = await ledger.renewLease(...args);
        if (!held) renewedFalse();
        return held;
      },
    };
    const paused = new ExportRunner(watched, peers, { now: () => clock, retry: noRetry, ownerId: "paused-node", leaseTtlMs: 300 });
    // While its query runs (it starts as the run opens), its lease expires and another node's
    // run takes the export; the query ends after the next renewal.
    hooks.duringQuery = async () => {
      hooks.duringQuery = async () => {};
      await opened;
      clock += 5000;
      expect(await ledger.startRun({ exportId: spec.id, name: spec.name, runId: "other-run", owner: "other-node", leaseTtlMs: 60_000 })).toBeDefined();
      await lost;
      // The runner's own handler of that answer runs after this one's.
      await new Promise((r) => setImmediate(r));
    };
    const fenced = await paused.run(spec);
    expect(fenced).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease on export 'E' was lost .* stopped before uploading/) });
    expect(calls.staged).toEqual([]);
    expect(calls.uploaded).toBe(0);
    expect(calls.deleted).toEqual([]);
    expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    // One failure on record for it: the one the other node's run recorded as it took the lease.
    expect((await cursor.listFailures({ exportId: spec.id })).failures.map((f) => f.operationId)).toEqual([fenced.runId]);
    // The other node's run holds the export still: the fenced run's failure took nothing from it.
    expect((await ledger.getExportStates([spec.id]))[0]!.isRunning).toBe(true);
  });

  it("fenced while paused, before any renewal told it: the ledger refuses its journal, and it uploads nothing", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    // Renewals a minute apart: none comes before the run journals, so the runner still believes it holds the lease.
    const paused = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, ownerId: "paused-node", leaseTtlMs: 180_000 });
    hooks.duringQuery = async () => {
      hooks.duringQuery = async () => {};
      // The node pauses past its lease; another node's run takes the export meanwhile.
      while (!(await ledger.getExportStates([spec.id]))[0]!.isRunning) await new Promise((r) => setTimeout(r, 5));
      await anotherNodeTakesOver(spec);
    };
    const fenced = await paused.run(spec);
    expect(fenced).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease on export export-1 was lost .* uploads nothing/) });
    expect(calls.staged).toHaveLength(1);
    expect(calls.uploaded).toBe(0);
    expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    // The other node's run holds the export still.
    expect((await ledger.getExportStates([spec.id]))[0]!.isRunning).toBe(true);
  });

  it("fenced: deletes only its own files, never those the new owner journaled for its run in flight", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    const paused = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, ownerId: "paused-node", leaseTtlMs: 1000 });
    // While the paused node uploads, its lease passes to another node, whose run has journaled its files and not yet committed.
    hooks.upload = async () => {
      clock += 5000;
      const other = await ledger.startRun({ exportId: spec.id, name: spec.name, runId: "other-run", owner: "other-node", leaseTtlMs: 60_000 });
      expect(other).toBeDefined();
      await ledger.journalPending(spec.id, "other-run", ["file:///tmp/lake/other-run.csv"]);
    };
    const fenced = await paused.run(spec);
    expect(fenced).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease .* was lost/) });
    expect(calls.deleted).toEqual([[`file:///tmp/lake/${spec.id.slice(0, 8)}_1_${fenced.runId.slice(0, 8)}_0.csv`]]);
    expect(await ledger.pendingArtifacts(spec.id)).toEqual([{ runId: "other-run", path: "file:///tmp/lake/other-run.csv" }]);
  });

  describe("a Delta table's files that earlier attempts journaled", () => {
    const deltaSpec = () => create(ExportSpecSchema, { ...exportSpec(), externalTable: { ...exportSpec().externalTable!, kind: "delta", dataFormat: "parquet" } });
    /** An attempt that journaled a file, uploaded it and stopped before its log commit (paused, or dead). */
    const earlierAttemptJournaled = (spec: ExportSpec) => ledger.journalPending(spec.id, "earlier-run", ["file:///tmp/lake/earlier.parquet"]);
    /** A Delta export whose earlier attempt journaled a file, and a runner with peers to watch. */
    const afterAnEarlierAttempt = async () => {
      const spec = deltaSpec();
      await initState(spec);
      await earlierAttemptJournaled(spec);
      const fakes = fakePeers(() => spec);
      return { spec, ...fakes, runner: new ExportRunner(ledger, fakes.peers, { now: () => clock, retry: noRetry }) };
    };

    it("are removed only once the run's own upload (its log commit, which takes their txn) is done: before it, a paused attempt could still commit them", async () => {
      const { spec, calls, hooks, runner } = await afterAnEarlierAttempt();
      await ingest();
      let deletedBeforeUpload: string[][] = [];
      hooks.upload = async () => {
        deletedBeforeUpload = [...calls.deleted];
      };
      const run = await runner.run(spec);
      expect(run.result).toBe("Completed");
      expect(deletedBeforeUpload).toEqual([]);
      expect(calls.deleted).toEqual([["file:///tmp/lake/earlier.parquet"]]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    });

    /** The earlier attempt's setup, with a query that keeps no row: no upload, no log commit of this run's own. */
    const withNoRows = async () => {
      const fakes = await afterAnEarlierAttempt();
      const query = fakes.peers.query.executeToSpool;
      fakes.peers.query.executeToSpool = async (req) => ({ ...(await query(req)), rowCount: 0n, encodedFiles: [] }) as never;
      return fakes;
    };

    /** The log as a run's FindDeltaCommit finds it: `logged`, an earlier attempt's commit of the txn, or none (the run's hold takes it). */
    const logWith = (calls: { fenced: bigint[] }, logged?: { artifacts: unknown[]; toCursor: string }) => async (req: { txnVersion?: bigint; fence?: boolean; holdToCursor?: string }) =>
      (calls.fenced.push(req.fence ? req.txnVersion! : -1n), logged ? { committed: true, ...logged } : { committed: !!req.holdToCursor, artifacts: [], toCursor: req.holdToCursor ?? "" }) as never;

    it("are removed by a run with nothing to export once it has taken their txn for its range", async () => {
      const { spec, peers, calls, runner } = await withNoRows();
      const holds: Array<[bigint | undefined, string | undefined, string | undefined]> = [];
      const find = logWith(calls);
      let checkpointAtHold = -1n;
      peers.writer.findDeltaCommit = async (req) => (holds.push([req.txnVersion, req.holdFromCursor, req.holdToCursor]), (checkpointAtHold = (await ledger.getExportStates([spec.id]))[0]!.checkpointCursor), find(req));
      const from = (await ledger.getExportStates([spec.id]))[0]!.checkpointCursor;
      const cursor = await ingest();
      expect(await runner.run(spec)).toMatchObject({ result: "Completed", from, to: cursor, artifacts: [] });
      // The first run's txn (no run committed before it, so 1), held for the run's range before the ledger's commit: no fence.
      expect(holds).toEqual([[1n, String(from), String(cursor)]]);
      expect(checkpointAtHold).toBe(from);
      expect(calls.fenced).toEqual([-1n]);
      expect(calls.deleted).toEqual([["file:///tmp/lake/earlier.parquet"]]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
      // Nothing journaled: the next empty run does not ask the log.
      await ingest();
      expect((await runner.run(spec)).result).toBe("Completed");
      expect(holds).toHaveLength(1);
    });

    it("a run with nothing to export whose ledger commit fails after its hold leaves the files journaled; the next run is recorded as the held range and removes them", async () => {
      const { spec, peers, calls } = await withNoRows();
      // The log as the writer keeps it: the first hold takes the txn, and is the answer after.
      let held: string | undefined;
      peers.writer.findDeltaCommit = async (req) => ((held ??= req.holdToCursor), { committed: true, artifacts: [], toCursor: held }) as never;
      let refuse = true;
      const refusing: RunLedger = {
        ...ledger,
        commitRun: async (...args) => {
          if (refuse) throw new SpillwayError(ErrorCode.unavailable, "cursor service restarting");
          return ledger.commitRun(...args);
        },
      };
      const runner = new ExportRunner(refusing, peers, { now: () => clock, retry: noRetry });
      const from = (await ledger.getExportStates([spec.id]))[0]!.checkpointCursor;
      const first = await ingest();
      const failed = await runner.run(spec);
      expect(failed.result).toBe("Failed");
      expect(calls.deleted).toEqual([]);
      // The hold is journaled too, under the run: it keeps a cursor reset out until the ledger has its range.
      expect(await ledger.pendingArtifacts(spec.id)).toEqual(expect.arrayContaining([{ runId: "earlier-run", path: "file:///tmp/lake/earlier.parquet" }, { runId: failed.runId, path: `delta-hold:${spec.id}:1` }]));
      refuse = false;
      await ingest();
      expect(await runner.run(spec)).toMatchObject({ result: "Completed", from, to: first });
      expect(calls.deleted.flat().sort()).toEqual([`delta-hold:${spec.id}:1`, "file:///tmp/lake/earlier.parquet"]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    });

    it("a run with no rows whose txn an earlier attempt committed to the log is that commit: its files and the range it covered, past the run's own", async () => {
      const { spec, peers, calls } = await withNoRows();
      const cursor = await ingest();
      const further = await ingest();
      // The earlier attempt's range reached further than this run's (forcedLatency, a clock behind).
      peers.writer.findDeltaCommit = logWith(calls, { artifacts: [{ path: "file:///tmp/lake/earlier.parquet", numRecords: 4n, sizeInBytes: 9n }], toCursor: String(further) });
      // The writer keeps the file the log has: it stays journaled until the commit records it.
      peers.writer.deleteArtifacts = async (req) => (calls.deleted.push(req.paths ?? []), { kept: ["file:///tmp/lake/earlier.parquet"] }) as never;
      let journaledAtCommit: unknown[] = [];
      const recording = new ExportRunner({ ...ledger, commitRun: async (...args) => ((journaledAtCommit = await ledger.pendingArtifacts(spec.id)), ledger.commitRun(...args)) }, peers, { now: () => clock, retry: noRetry });
      const state = (await ledger.getExportStates([spec.id]))[0]!;
      const run = await recording.run(spec, { ...state, currentCursor: cursor });
      expect(run).toMatchObject({ result: "Completed", to: further, artifacts: [expect.objectContaining({ path: "file:///tmp/lake/earlier.parquet", numRecords: 4n })] });
      expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(further);
      expect(journaledAtCommit).toEqual(expect.arrayContaining([{ runId: "earlier-run", path: "file:///tmp/lake/earlier.parquet" }, { runId: run.runId, path: `delta-hold:${spec.id}:1` }]));
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    });

    it("are left journaled by a run whose removal fails, for the next run", async () => {
      const { spec, peers, runner } = await afterAnEarlierAttempt();
      await ingest();
      peers.writer.deleteArtifacts = async () => {
        throw new SpillwayError(ErrorCode.unavailable, "storage timed out");
      };
      expect((await runner.run(spec)).result).toBe("Completed");
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([{ runId: "earlier-run", path: "file:///tmp/lake/earlier.parquet" }]);
    });
  });

  it("commits a manifest with the MD5s the upload reported, and leaves out those it did not", async () => {
    const spec = exportSpec();
    await initState(spec);
    const { peers } = fakePeers(() => spec);
    peers.writer.uploadArtifacts = async (req) =>
      ({
        artifacts: [
          { path: `file:///tmp/lake/${req.stageId}-0.csv`, numRecords: 6n, sizeInBytes: 30n, md5: "bWQ1IG9mIHRoZSBmaXJzdA==" },
          { path: `file:///tmp/lake/${req.stageId}-1.csv`, numRecords: 4n, sizeInBytes: 20n, md5: "" },
        ],
        usage: USAGE.upload,
      }) as never;
    const manifests: Array<{ bodyJson: string } | undefined> = [];
    const recording: RunLedger = { ...ledger, commitRun: async (...args) => (manifests.push(args[8]), ledger.commitRun(...args)) };
    await ingest();
    const run = await new ExportRunner(recording, peers, { now: () => clock, retry: noRetry }).run(spec);
    expect(run.result).toBe("Completed");
    expect(JSON.parse(manifests[0]!.bodyJson).files).toEqual([
      { path: `file:///tmp/lake/${run.runId}-0.csv`, numRecords: 6, sizeInBytes: 30, md5: "bWQ1IG9mIHRoZSBmaXJzdA==" },
      { path: `file:///tmp/lake/${run.runId}-1.csv`, numRecords: 4, sizeInBytes: 20 },
    ]);
  });

  it("commits a manifest for a run whose query kept none of the records it read, and none for a run that read nothing", async () => {
    const spec = exportSpec();
    await initState(spec);
    const { peers } = fakePeers(() => spec);
    let read = "";
    peers.query.executeToSpool = async (req) => ({ spoolHandle: req.spoolName, rowCount: 0n, encodedFiles: [], oldestFactCursor: read }) as never;
    const manifests: unknown[] = [];
    const recording: RunLedger = { ...ledger, commitRun: async (...args) => (manifests.push(args[8]), ledger.commitRun(...args)) };
    const runner = new ExportRunner(recording, peers, { now: () => clock, retry: noRetry });
    read = String(await ingest());
    const filtered = await runner.run(spec);
    read = "";
    const idle = await runner.run(spec);
    expect([filtered.result, idle.result]).toEqual(["Completed", "Completed"]);
    expect(manifests).toHaveLength(2);
    expect(JSON.parse((manifests[0] as { bodyJson: string }).bodyJson)).toMatchObject({ kind: "ContinuousExportRun", runId: filtered.runId, fromCursor: String(filtered.from), toCursor: String(filtered.to), files: [] });
    expect(manifests[1]).toBeUndefined();
  });

  it("completes, deleting nothing, when its commit landed but the answer was lost", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls } = fakePeers(() => spec);
    const lossy: RunLedger = {
      ...ledger,
      commitRun: async (...args) => {
        await ledger.commitRun(...args);
        throw new SpillwayError(ErrorCode.unavailable, "connection reset after the commit");
      },
    };
    const run = await new ExportRunner(lossy, peers, { now: () => clock, retry: noRetry }).run(spec);
    expect(run).toMatchObject({ result: "Completed", artifacts: [expect.objectContaining({ path: `file:///tmp/lake/own-${run.runId}.csv` })] });
    expect(calls.deleted).toEqual([]);
    expect((await cursor.listArtifacts({ exportId: spec.id })).artifacts).toHaveLength(1);
    expect((await cursor.listFailures({ exportId: spec.id })).failures).toEqual([]);
  });

  it("does not commit a run whose export was disabled meanwhile", async () => {
    let current: ExportSpec | undefined = exportSpec();
    const spec = current;
    const start = await initState(spec);
    await ingest();
    const { peers, hooks } = fakePeers(() => current);
    hooks.duringQuery = async () => {
      current = { ...spec, isDisabled: true };
    };
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
    const run = await runner.run(spec);
    expect(run).toMatchObject({ result: "Failed", details: expect.stringContaining("was disabled during the run") });
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(start);
  });

  it("disables an export whose runs have failed only permanently for 7 days, and not before", async () => {
    const spec = { ...exportSpec(), externalTable: undefined };
    await initState(spec);
    await ingest();
    const { peers } = fakePeers(() => spec);
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
    const disabled = async () => (await ledger.getExportStates([spec.id]))[0]!.systemDisabled;

    expect(await runner.run(spec)).toMatchObject({ result: "Failed", details: expect.stringContaining("external table") });
    clock += 6 * 86_400_000;
    await runner.run(spec);
    expect(await disabled()).toBe("");
    clock += 86_400_000 + 1000;
    await runner.run(spec);
    // Disabled in the ledger, on the scheduler's account: the user's definition is left as it was.
    expect(await disabled()).toMatch(/^disabled automatically: only permanent failures since/);
    expect(((await cursor.listFailures({ exportId: spec.id })).failures).at(-1)).toMatchObject({ details: expect.stringContaining("disabled automatically") });
  });

  it("completes once when the writer restarts between staging and upload (its stage is durable)", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers, calls, hooks } = fakePeers(() => spec);
    let down = true;
    hooks.upload = async () => {
      if (down) {
        down = false;
        throw new SpillwayError(ErrorCode.unavailable, "connection refused: the writer is restarting");
      }
    };
    const retry: RetryOptions = { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} };
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry });
    const run = await runner.run(spec);
    expect(run.result).toBe("Completed");
    expect(calls.uploaded).toBe(2);
    expect((await cursor.listArtifacts({ exportId: spec.id })).artifacts).toHaveLength(1);
    expect((await cursor.listFailures({ exportId: spec.id })).failures).toEqual([]);
  });

  it("runs an asked-for run once another scheduler's run of the export is over, rather than refuse it", async () => {
    const spec = exportSpec();
    await initState(spec);
    await ingest();
    const { peers } = fakePeers(() => spec);
    // Another node holds the export's lease; it lets go 600 ms later.
    expect(await ledger.startRun({ exportId: spec.id, name: spec.name, runId: "elsewhere", owner: "other-node", leaseTtlMs: 60_000 })).toBeDefined();
    setTimeout(() => void ledger.releaseLease(spec.id, "other-node"), 600);
    const runner = new ExportRunner(ledger, peers, { retry: noRetry, leaseTtlMs: 2000 });
    await expect(runner.run(spec)).rejects.toThrow(/being run by another scheduler/);
    expect(await runner.runAsked(spec)).toMatchObject({ result: "Completed" });
    // A lease that stays taken is refused after a lease and a half.
    expect(await ledger.startRun({ exportId: spec.id, name: spec.name, runId: "stuck", owner: "other-node", leaseTtlMs: 60_000 })).toBeDefined();
    const t0 = Date.now();
    await expect(runner.runAsked(spec)).rejects.toThrow(/being run by another scheduler/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
  });

  describe("its files' names are journaled", () => {
    /** The writer stages once the run's one planned name is in the journal, and `meanwhile` has run. */
    const stagesAfterItsJournal = (peers: RunnerPeers, spec: ExportSpec, meanwhile: () => Promise<void>) => {
      const stage = peers.writer.stageArtifacts;
      peers.writer.stageArtifacts = async (req) => {
        await expect.poll(() => ledger.pendingArtifacts(spec.id), { timeout: 5_000, interval: 5 }).toHaveLength(1);
        await meanwhile();
        return stage(req);
      };
    };

    /** The ledger, counting the renewals of leases asked of it. */
    const countingRenewals = () => {
      let n = 0;
      const renewLease = ledger.renewLease.bind(ledger);
      return { counted: { ...ledger, renewLease: (...args: Parameters<RunLedger["renewLease"]>) => (n++, renewLease(...args)) } as RunLedger, renewals: () => n };
    };
    /** The path the writer gives a run's first file in an unpartitioned folder (services/writer stage). */
    const firstFileOf = (spec: ExportSpec, runId: string) => `file:///tmp/lake/${spec.id.slice(0, 8)}_1_${runId.slice(0, 8)}_0.csv`;

    it("beside the staging when the table has no partition: the journal holds them before the stage is done, and the upload waits for both", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers, hooks } = fakePeers(() => spec);
      const order: string[] = [];
      const stage = peers.writer.stageArtifacts;
      peers.writer.stageArtifacts = async (req) => {
        // The stage ends only once the journal holds the file it is about to name: staging first, then journaling, never ends.
        const expected = [{ runId: req.stageId, path: firstFileOf(spec, req.stageId!) }];
        await expect.poll(() => ledger.pendingArtifacts(spec.id), { timeout: 5_000, interval: 5 }).toEqual(expected);
        order.push("journaled while staging");
        return stage(req);
      };
      hooks.upload = async () => void order.push("uploaded");
      const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
      const run = await runner.run(spec);
      expect(run).toMatchObject({ result: "Completed" });
      expect(order).toEqual(["journaled while staging", "uploaded"]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    });

    it("beside the staging, and fenced again before the upload when the stage outlasted the journal: a node paused while staging uploads nothing", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers, calls } = fakePeers(() => spec);
      // Renewals a minute apart: none comes during the run, so only the check before the upload can tell.
      const paused = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, ownerId: "paused-node", leaseTtlMs: 180_000 });
      // The node pauses past its lease while staging; another node's run takes the export meanwhile.
      stagesAfterItsJournal(peers, spec, () => anotherNodeTakesOver(spec));
      const fenced = await paused.run(spec);
      expect(fenced).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease on export 'E' was lost .* before uploading/) });
      expect(calls.uploaded).toBe(0);
      // What it journaled it removes by name (nothing was there) as it fails, as any run whose upload was asked for.
      expect(calls.deleted).toEqual([[firstFileOf(spec, fenced.runId)]]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
      expect((await ledger.getExportStates([spec.id]))[0]!.isRunning).toBe(true);
    });

    it("beside a long stage, renewing the lease before the upload: still its own, the run uploads and commits", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers, calls } = fakePeers(() => spec);
      // A stage of a few seconds; no one else wants the export.
      stagesAfterItsJournal(peers, spec, async () => void (clock += 5_000));
      const { counted, renewals } = countingRenewals();
      const runner = new ExportRunner(counted, peers, { now: () => clock, retry: noRetry, leaseTtlMs: 180_000 });
      expect(await runner.run(spec)).toMatchObject({ result: "Completed" });
      expect(renewals()).toBe(1);
      expect(calls.uploaded).toBe(1);
    });

    it("beside a stage that ends soon after the journal, with no renewal between them", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers } = fakePeers(() => spec);
      const { counted, renewals } = countingRenewals();
      const runner = new ExportRunner(counted, peers, { now: () => clock, retry: noRetry });
      expect(await runner.run(spec)).toMatchObject({ result: "Completed" });
      expect(renewals()).toBe(0);
    });

    it("after the staging when the writer names a file the plan did not: it is in the journal before anything is uploaded", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers, hooks } = fakePeers(() => spec);
      peers.writer.stageArtifacts = async (req) =>
        ({ artifacts: [{ path: firstFileOf(spec, req.stageId!), numRecords: 5n, sizeInBytes: 25n }, { path: "file:///tmp/lake/unplanned.csv", numRecords: 5n, sizeInBytes: 25n }], alreadyCommitted: false }) as never;
      let journaledAtUpload: string[] = [];
      hooks.upload = async () => {
        journaledAtUpload = (await ledger.pendingArtifacts(spec.id)).map((p) => p.path).sort();
      };
      const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
      const run = await runner.run(spec);
      expect(run).toMatchObject({ result: "Completed" });
      expect(journaledAtUpload).toEqual([firstFileOf(spec, run.runId), "file:///tmp/lake/unplanned.csv"].sort());
      const { runs } = await cursor.listRuns({ exportIds: [spec.id] });
      expect(runs[0]!.resources!.phases.map((p) => p.name)).toEqual(["range", "start", "query", "stage", "journal", "journal", "upload", "check"]);
    });

    it("after the staging when the table is partitioned: its folders come from the rows", async () => {
      const spec = exportSpec();
      spec.externalTable!.partitions = [{ $typeName: "spillway.catalog.v1.Partition", name: "P", type: "long", function: "", column: "Id", modulo: 0n }];
      await initState(spec);
      await ingest();
      const { peers, hooks } = fakePeers(() => spec);
      const stage = peers.writer.stageArtifacts;
      let journaledWhileStaging: unknown[] | undefined;
      peers.writer.stageArtifacts = async (req) => {
        await new Promise((r) => setTimeout(r, 50));
        journaledWhileStaging = await ledger.pendingArtifacts(spec.id);
        return stage(req);
      };
      let journaledAtUpload: string[] = [];
      hooks.upload = async () => {
        journaledAtUpload = (await ledger.pendingArtifacts(spec.id)).map((p) => p.path);
      };
      const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
      const run = await runner.run(spec);
      expect(run).toMatchObject({ result: "Completed" });
      expect(journaledWhileStaging).toEqual([]);
      expect(journaledAtUpload).toEqual([firstFileOf(spec, run.runId)]);
    });

    it("and a stage that failed leaves them to the next run, which removes them (nothing there) and commits", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers, calls } = fakePeers(() => spec);
      const stage = peers.writer.stageArtifacts;
      peers.writer.stageArtifacts = async () => {
        throw new SpillwayError(ErrorCode.unavailable, "the writer's disk is full");
      };
      const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
      const failed = await runner.run(spec);
      expect(failed).toMatchObject({ result: "Failed", details: expect.stringContaining("disk is full") });
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([{ runId: failed.runId, path: firstFileOf(spec, failed.runId) }]);
      expect(calls.uploaded).toBe(0);

      peers.writer.stageArtifacts = stage;
      const next = await runner.run(spec);
      expect(next).toMatchObject({ result: "Completed" });
      expect(calls.deleted).toEqual([[firstFileOf(spec, failed.runId)]]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    });
  });

  describe("its query starts while the run is opened", () => {
    /** Fails the test, rather than hang it, when `p` does not settle in time. */
    const within = <T>(p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen`)), 5000))]);

    it("on the range read just before, which the opened run takes", async () => {
      const spec = exportSpec();
      const start = await initState(spec);
      const first = await ingest();
      const { peers, calls, hooks } = fakePeers(() => spec);
      let queryStarted!: () => void;
      const queried = new Promise<void>((r) => (queryStarted = r));
      hooks.duringQuery = async () => queryStarted();
      // The run opens only once its query has begun: run one after the other, this would never end.
      const overlapping: RunLedger = { ...ledger, startRun: async (start) => (await within(queried, "the query before the run opened"), ledger.startRun(start)) };
      const runner = new ExportRunner(overlapping, peers, { now: () => clock, retry: noRetry });
      expect(await runner.run(spec)).toMatchObject({ result: "Completed", from: start, to: first });
      expect(calls.spooled).toEqual([[["T", String(start), String(first)]]]);
    });

    it("runs the query again when the checkpoint moved before the run opened, without waiting for the first", async () => {
      const spec = exportSpec();
      const start = await initState(spec);
      const first = await ingest();
      const second = await ingest();
      const { peers, calls } = fakePeers(() => spec);
      const spools: string[] = [];
      let requeried!: () => void;
      const again = new Promise<void>((r) => (requeried = r));
      const query = peers.query;
      peers.query = {
        ...query,
        executeToSpool: async (req) => {
          spools.push(req.spoolName ?? "");
          // The early query ends only once the run has asked again: waited for, it would never end.
          if (spools.length === 1) await within(again, "the query again, under its own spool");
          else requeried();
          return query.executeToSpool(req);
        },
      };
      // A replay moves the checkpoint between the range read and the run's opening.
      const moving: RunLedger = {
        ...ledger,
        runRange: async (...args) => {
          const range = await ledger.runRange(...args);
          await cursor.resetExportCheckpoint({ exportId: spec.id, name: spec.name, cursor: String(first), note: "test" });
          return range;
        },
      };
      const runner = new ExportRunner(moving, peers, { now: () => clock, retry: noRetry });
      const run = await runner.run(spec);
      expect(run).toMatchObject({ result: "Completed", from: first, to: second });
      // The early query on the range read first, then the run's own (which the fake records first: the early one waits).
      expect(calls.spooled).toEqual([[["T", String(first), String(second)]], [["T", String(start), String(second)]]]);
      expect(spools).toEqual([run.runId, `${run.runId}-again`]);
      // What was staged is the second query's, and both spools go.
      expect(calls.staged.map((s) => s.spoolHandle)).toEqual([`${run.runId}-again`]);
      await runner.drain();
      expect(calls.discarded.sort()).toEqual([run.runId, `${run.runId}-again`].sort());
      expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(second);
      // Both queries were the run's work: its record counts both.
      const { runs } = await cursor.listRuns({ exportIds: [spec.id] });
      expect(runs[0]!.resources!.usage).toMatchObject({ cpuTimeUs: 2n * USAGE.query.cpuTimeUs + USAGE.stage.cpuTimeUs + USAGE.upload.cpuTimeUs });
    });

    it("on the range of the state its scheduler read (the clock with it), without reading the range again", async () => {
      const spec = exportSpec();
      const start = await initState(spec);
      const first = await ingest();
      const [seen] = await ledger.getExportStates([spec.id]);
      expect(seen).toMatchObject({ checkpointCursor: start, currentCursor: first, isRunning: false });
      // Ingested after the state was read: the run takes the range seen, and leaves this for the next.
      await ingest();
      const { peers, calls } = fakePeers(() => spec);
      const noRange: RunLedger = { ...ledger, runRange: () => Promise.reject(new Error("the range was read again")) };
      const runner = new ExportRunner(noRange, peers, { now: () => clock, retry: noRetry });
      expect(await runner.run(spec, seen)).toMatchObject({ result: "Completed", from: start, to: first });
      expect(calls.spooled).toEqual([[["T", String(start), String(first)]]]);
    });

    it("runs the query again when the checkpoint moved after its scheduler read the state", async () => {
      const spec = exportSpec();
      const start = await initState(spec);
      const first = await ingest();
      const second = await ingest();
      const [seen] = await ledger.getExportStates([spec.id]);
      // A replay moves the checkpoint after the scheduler's look: the state it read is stale.
      await cursor.resetExportCheckpoint({ exportId: spec.id, name: spec.name, cursor: String(first), note: "test" });
      const { peers, calls } = fakePeers(() => spec);
      const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry });
      const run = await runner.run(spec, seen);
      expect(run).toMatchObject({ result: "Completed", from: first, to: second });
      expect(calls.spooled.map((s) => s[0]).sort()).toEqual([["T", String(first), String(second)], ["T", String(start), String(second)]].sort());
      expect(calls.staged.map((s) => s.spoolHandle)).toEqual([`${run.runId}-again`]);
      expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(second);
    });

    it("queries nothing before the run opens when another owner holds the export, its range cannot be read, or it cannot run", async () => {
      const spec = exportSpec();
      const start = await initState(spec);
      const first = await ingest();
      const { peers, calls } = fakePeers(() => spec);
      const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, leaseTtlMs: 60_000 });
      expect(await ledger.startRun({ exportId: spec.id, name: spec.name, runId: "elsewhere", owner: "other-node", leaseTtlMs: 60_000 })).toBeDefined();
      for (let i = 0; i < 3; i++) await expect(runner.run(spec)).rejects.toThrow(/being run by another scheduler/);
      expect(calls.spooled).toEqual([]);
      await ledger.releaseLease(spec.id, "other-node");

      // A cursor service without GetRunRange: the run goes on, its query after the opening.
      const order: string[] = [];
      const older: RunLedger = {
        ...ledger,
        runRange: async () => Promise.reject(new SpillwayError(ErrorCode.unimplemented, "unknown method GetRunRange")),
        startRun: async (s) => (order.push("start"), ledger.startRun(s)),
      };
      const query = peers.query;
      peers.query = { ...query, executeToSpool: async (req) => (order.push("query"), query.executeToSpool(req)) };
      expect(await new ExportRunner(older, peers, { now: () => clock, retry: noRetry }).run(spec)).toMatchObject({ result: "Completed", from: start, to: first });
      expect(order).toEqual(["start", "query"]);

      // A fact table gone from the definition: the run fails as before, with no query.
      await ingest();
      const broken = { ...spec, factTables: ["Gone"] } as ExportSpec;
      expect(await runner.run(broken)).toMatchObject({ result: "Failed", details: expect.stringContaining("'Gone'") });
      expect(calls.spooled).toHaveLength(1);
    });

    it("lets its spool go, once the query is done, when the run cannot open", async () => {
      const spec = exportSpec();
      await initState(spec);
      await ingest();
      const { peers, calls, hooks } = fakePeers(() => spec);
      let finishQuery!: () => void;
      hooks.duringQuery = () => new Promise<void>((r) => (finishQuery = r));
      const held: RunLedger = { ...ledger, startRun: async () => undefined };
      const runner = new ExportRunner(held, peers, { now: () => clock, retry: noRetry });
      await expect(runner.run(spec)).rejects.toThrow(/being run by another scheduler/);
      // Not while the query still writes it.
      expect(calls.discarded).toEqual([]);
      finishQuery();
      await runner.drain();
      expect(calls.discarded).toHaveLength(1);

      const gone: RunLedger = { ...ledger, startRun: async () => Promise.reject(new SpillwayError(ErrorCode.notFound, "continuous export 'E' no longer exists")) };
      hooks.duringQuery = async () => {};
      const second = new ExportRunner(gone, peers, { now: () => clock, retry: noRetry });
      await expect(second.run(spec)).rejects.toThrow(/no longer exists/);
      await second.drain();
      expect(calls.discarded).toHaveLength(2);
      // Nothing was opened, so nothing was committed or recorded as failed.
      expect((await cursor.listRuns({ exportIds: [spec.id] })).runs).toEqual([]);
      expect((await cursor.listFailures({ exportId: spec.id })).failures).toEqual([]);
    });
  });

  describe("split over nodes", () => {
    /** A node's query and writer services, recording what they were asked; `failUpload` makes its upload fail. */
    const node = (name: string, failUpload = false) => {
      const log = { ranges: [] as string[][], uploaded: [] as string[], discarded: [] as string[] };
      const peers: Pick<RunnerPeers, "query" | "writer"> = {
        query: {
          executeToSpool: async (req) => (log.ranges.push((req.factTables ?? []).map((f) => `${f.afterCursor}..${f.upToCursor}`)), { spoolHandle: req.spoolName, rowCount: 10n, encodedFiles: ["encoded/data_0.csv"] }) as never,
          discardSpool: async (req) => (log.discarded.push(`spool ${req.spoolName}`), {}) as never,
        },
        writer: {
          // A split run is never a Delta table's: its log is never asked.
          findDeltaCommit: async () => {
            throw new Error("a split run asked a Delta log");
          },
          stageArtifacts: async (req) => ({ artifacts: [{ path: `file:///tmp/lake/${req.nameStem}_0.csv`, numRecords: 10n, sizeInBytes: 50n }], alreadyCommitted: false }) as never,
          uploadArtifacts: async (req) => {
            await new Promise((r) => setTimeout(r, 5));
            if (failUpload) throw new SpillwayError(ErrorCode.unavailable, `${name}: storage unavailable`);
            log.uploaded.push(req.stageId ?? "");
            return { artifacts: [{ path: `file:///tmp/lake/${name}-${req.stageId}.csv`, numRecords: 10n, sizeInBytes: 50n }] } as never;
          },
          discardStage: async (req) => (log.discarded.push(`stage ${req.stageId}`), {}) as never,
          deleteArtifacts: async () => ({}) as never,
        },
      };
      return { peers, log };
    };
    const cluster = (nodes: Record<string, ReturnType<typeof node>>, self: string) => ({
      nodeId: self,
      liveNodes: async () => Object.keys(nodes).sort().map((nodeId) => ({ nodeId, address: `${nodeId}:1` })),
      peersAt: (address: string) => nodes[address.replace(/:1$/, "")]!.peers,
      minSplitBytes: 200n,
    });

    it("exports a row-wise run's cursor range in parts on every live node, and commits all their artifacts at once", async () => {
      const spec = { ...exportSpec(), rowWise: true };
      const start = await initState(spec);
      const cursors = [await ingest(), await ingest(), await ingest(), await ingest(), await ingest(), await ingest()];
      const { peers: own, calls } = fakePeers(() => spec);
      const nodes = { a: node("a"), b: node("b"), c: node("c") };
      // This is node b: its own services run its part (the first); a and c are reached by address.
      nodes.b.peers = own;
      const runner = new ExportRunner(ledger, own, { now: () => clock, retry: noRetry, cluster: cluster(nodes, "b") });
      const run = await runner.run(spec);
      expect(run).toMatchObject({ result: "Completed", from: start, to: cursors[5] });
      // Parts by bytes (each extent 100 bytes): two extents each, b first, then c and a.
      expect(calls.spooled).toEqual([[["T", String(start), String(cursors[1])]]]);
      expect(nodes.c.log.ranges).toEqual([[`${cursors[1]}..${cursors[3]}`]]);
      expect(nodes.a.log.ranges).toEqual([[`${cursors[3]}..${cursors[5]}`]]);
      const committed = (await cursor.listArtifacts({ exportId: spec.id })).artifacts.map((a) => a.path).sort();
      expect(committed).toEqual([`file:///tmp/lake/a-${run.runId}-p2.csv`, `file:///tmp/lake/own-${run.runId}-p0.csv`, `file:///tmp/lake/c-${run.runId}-p1.csv`].sort());
      expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(cursors[5]);
      // Its record: three parts; only node b's fake reports usage, so the sum is b's calls'.
      const [record] = (await cursor.listRuns({ exportIds: [spec.id] })).runs;
      expect(record!.resources).toMatchObject({ parts: 3, rowsWritten: 30n, bytesWritten: 150n, usage: { cpuTimeUs: 1600n, rowsRead: 10n } });
      expect(record!.resources!.phases.map((p) => p.name)).toEqual(["start", "query and stage", "journal", "upload", "check"]);
      await runner.drain();
      expect(nodes.a.log.discarded.sort()).toEqual([`spool ${run.runId}-p2`, `stage ${run.runId}-p2`]);
    });

    it("commits nothing when one part fails, deletes what the others uploaded, and waits for every part first", async () => {
      const spec = { ...exportSpec(), rowWise: true };
      const start = await initState(spec);
      for (let i = 0; i < 4; i++) await ingest();
      const { peers: own, calls } = fakePeers(() => spec);
      const nodes = { a: node("a"), b: node("b", true) };
      nodes.a.peers = own;
      const runner = new ExportRunner(ledger, own, { now: () => clock, retry: noRetry, cluster: cluster(nodes, "a") });
      const run = await runner.run(spec);
      expect(run).toMatchObject({ result: "Failed", details: expect.stringContaining("b: storage unavailable") });
      expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(start);
      expect((await cursor.listArtifacts({ exportId: spec.id })).artifacts).toEqual([]);
      // Every part's staged name is deleted: a's, which uploaded, and b's, which may have landed.
      expect(calls.deleted.flat().sort()).toEqual([`file:///tmp/lake/${spec.id.slice(0, 8)}_1_${run.runId.slice(0, 8)}_p0_0.csv`, `file:///tmp/lake/${spec.id.slice(0, 8)}_1_${run.runId.slice(0, 8)}_p1_0.csv`]);
      expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    });

    it("keeps a run whole when the export is not row-wise, is small, or not distributed", async () => {
      const spec = exportSpec();
      await initState(spec);
      for (let i = 0; i < 4; i++) await ingest();
      const { peers: own, calls } = fakePeers(() => spec);
      const nodes = { a: node("a"), b: node("b") };
      const runner = new ExportRunner(ledger, own, { now: () => clock, retry: noRetry, cluster: cluster(nodes, "a") });
      expect((await runner.run(spec)).result).toBe("Completed");
      for (let i = 0; i < 1; i++) await ingest();
      expect((await runner.run({ ...spec, rowWise: true })).result).toBe("Completed");
      for (let i = 0; i < 4; i++) await ingest();
      // distributed=false: one writer, fewer files.
      expect((await runner.run({ ...spec, rowWise: true, properties: { ...spec.properties, distributed: false } as never })).result).toBe("Completed");
      expect(calls.spooled).toHaveLength(3);
      expect(nodes.b.log.ranges).toEqual([]);
    });
  });
});

describe("a row-wise run larger than a slice", () => {
  /** Fails the test, rather than hang it, when `p` does not settle in time. */
  const within = <T>(p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen`)), 5000))]);

  /**
   * The query service as it slices (ExecuteToSpoolRequest.max_fact_bytes): one extent a slice,
   * the cursor it covered to said when extents of the range are left after it.
   */
  function slicingQuery(peers: RunnerPeers, cursors: bigint[], asked: Array<{ after: string; upTo: string; maxFactBytes: bigint }>, before: (slice: number) => Promise<void> = async () => {}) {
    const query = peers.query;
    peers.query = {
      ...query,
      executeToSpool: async (req) => {
        const f = req.factTables![0]!;
        asked.push({ after: f.afterCursor!, upTo: f.upToCursor!, maxFactBytes: BigInt(req.maxFactBytes ?? 0) });
        await before(asked.length - 1);
        const spool = await query.executeToSpool(req);
        const inRange = cursors.filter((c) => c > BigInt(f.afterCursor!) && c <= BigInt(f.upToCursor!));
        return { ...spool, coveredToCursor: req.maxFactBytes && inRange.length > 1 ? String(inRange[0]) : "" } as never;
      },
    };
  }

  it("renews its lease before a slice's upload queued behind a slow one: once another node has the export, it uploads no more", async () => {
    const spec = { ...exportSpec(), rowWise: true };
    await initState(spec);
    const cursors = [await ingest(), await ingest(), await ingest()];
    const { peers, calls, hooks } = fakePeers(() => spec);
    slicingQuery(peers, cursors, []);
    hooks.upload = async () => {
      if (calls.uploaded !== 1) return;
      // The first slice's upload lasts until the next slice is journaled, then past the lease; another node takes the export.
      await expect.poll(async () => (await ledger.pendingArtifacts(spec.id)).length, { timeout: 5_000, interval: 5 }).toBeGreaterThanOrEqual(2);
      await anotherNodeTakesOver(spec);
    };
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, sliceBytes: 100n, ownerId: "slow-node", leaseTtlMs: 180_000 });
    const run = await runner.run(spec);
    expect(run).toMatchObject({ result: "Failed", details: expect.stringMatching(/lease on export 'E' was lost/) });
    expect(calls.uploaded).toBe(1);
  });

  it("is queried slice by slice, each slice uploading while the next is queried, and committed once", async () => {
    const spec = { ...exportSpec(), rowWise: true };
    const start = await initState(spec);
    const cursors = [await ingest(), await ingest(), await ingest()];
    const { peers, calls, hooks } = fakePeers(() => spec);
    const asked: Array<{ after: string; upTo: string; maxFactBytes: bigint }> = [];
    let lastSliceQueried!: () => void;
    const lastSlice = new Promise<void>((r) => (lastSliceQueried = r));
    slicingQuery(peers, cursors, asked, async (slice) => {
      if (slice === 2) lastSliceQueried();
    });
    // The first slice's upload ends only once the last slice's query has begun: one after the other, this would never end.
    hooks.upload = async () => {
      if (calls.uploaded === 1) await within(lastSlice, "the last slice's query while the first uploads");
    };
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, sliceBytes: 100n });
    const run = await runner.run(spec);
    expect(run).toMatchObject({ result: "Completed", from: start, to: cursors[2] });
    expect(asked).toEqual([
      { after: String(start), upTo: String(cursors[2]), maxFactBytes: 100n },
      { after: String(cursors[0]), upTo: String(cursors[2]), maxFactBytes: 100n },
      { after: String(cursors[1]), upTo: String(cursors[2]), maxFactBytes: 100n },
    ]);
    // Each slice staged and uploaded under a handle of its own, all committed by the one commit.
    const handles = [run.runId, `${run.runId}-s1`, `${run.runId}-s2`];
    expect(calls.staged.map((s) => s.spoolHandle)).toEqual(handles);
    expect(run.artifacts.map((a) => a.path).sort()).toEqual(handles.map((h) => `file:///tmp/lake/own-${h}.csv`).sort());
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(cursors[2]);
    expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
    await runner.drain();
    expect(calls.discarded.sort()).toEqual([...handles].sort());

    // Queried whole, with no slice asked for: an export that is not row-wise, one whose user
    // asked for the fewest files (distributed=false), and one that joins a dimension table, which
    // each slice would read as it then is.
    asked.length = 0;
    const whole = [
      { ...spec, rowWise: false },
      { ...spec, properties: { ...spec.properties, distributed: false } as never },
      { ...spec, dimensionTables: ["Keys"], tables: [...spec.tables, { database: "db", name: "Keys", columns: [{ name: "Key", type: "string" }], ingestionTimePolicy: false }] as never },
    ];
    for (const s of whole) {
      await ingest();
      await ingest();
      expect(await runner.run(s)).toMatchObject({ result: "Completed" });
    }
    expect(asked.map((a) => a.maxFactBytes)).toEqual([0n, 0n, 0n]);
    // Nor when slices are off (the default).
    await ingest();
    await ingest();
    asked.length = 0;
    expect(await new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry }).run(spec)).toMatchObject({ result: "Completed" });
    expect(asked.map((a) => a.maxFactBytes)).toEqual([0n]);
  });

  it("fails when a slice's query fails, once the uploads under way have ended, and deletes every file it journaled", async () => {
    const spec = { ...exportSpec(), rowWise: true };
    const start = await initState(spec);
    const cursors = [await ingest(), await ingest()];
    const { peers, calls, hooks } = fakePeers(() => spec);
    const order: string[] = [];
    slicingQuery(peers, cursors, [], async (slice) => {
      if (slice === 1) {
        order.push("second slice failed");
        throw new SpillwayError(ErrorCode.internal, "the query service crashed");
      }
    });
    hooks.upload = async () => {
      await new Promise((r) => setTimeout(r, 50));
      order.push("first slice uploaded");
    };
    const deleteArtifacts = peers.writer.deleteArtifacts;
    peers.writer.deleteArtifacts = async (req) => (order.push("deleted"), deleteArtifacts(req));
    const runner = new ExportRunner(ledger, peers, { now: () => clock, retry: noRetry, sliceBytes: 100n });
    const run = await runner.run(spec);
    expect(run).toMatchObject({ result: "Failed", details: expect.stringContaining("the query service crashed") });
    expect(order).toEqual(["second slice failed", "first slice uploaded", "deleted"]);
    expect(calls.deleted.flat()).toEqual([`file:///tmp/lake/${spec.id.slice(0, 8)}_1_${run.runId.slice(0, 8)}_0.csv`]);
    expect((await ledger.getExportStates([spec.id]))[0]!.checkpointCursor).toBe(start);
    expect(await ledger.pendingArtifacts(spec.id)).toEqual([]);
  });
});
