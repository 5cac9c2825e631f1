import { describe, expect, it, vi } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { batchesOf, OperationRunner, type OperationPeers } from "./operation-runner.js";

const noRetry = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
const request = JSON.stringify({ externalTable: "Lake", query: "SELECT Id FROM T", queryLanguage: "sql", sizeLimit: "0", parquetRowGroupSize: 0 });

/** Peers doing what a healthy Spillway does for one operation, recording what they were asked. */
function fakes(claim: { abandoned?: boolean; pending?: string[]; kind?: string } = {}) {
  const log = { finished: [] as Array<{ state?: string; status?: string; artifacts?: unknown[] }>, deleted: [] as string[][], cleared: [] as string[][], journaled: [] as string[][], renewals: 0, released: 0, releasedFor: [] as bigint[], fences: [] as boolean[] };
  const hooks = {
    cancelAfterRenewals: Infinity,
    upload: async () => {},
    ledgerState: "InProgress",
    finish: async () => {},
    delete: async () => {},
    /** The ledger's journal, given the claim the attempt names (operationOwner). */
    journal: async (_owner: string) => {},
    /** What the Delta log holds for the operation's txn. */
    deltaCommit: async (): Promise<{ committed: boolean; artifacts: unknown[] }> => ({ committed: false, artifacts: [] }),
  };
  let claimed = false;
  const peers: OperationPeers = {
    catalog: {
      listExportSpecs: async () => ({ specs: [] }) as never,
      planExport: async () => ({ spec: { database: "db", query: "SELECT Id FROM T", factTables: [], dimensionTables: ["T"], tables: [], externalTable: { name: "Lake", kind: claim.kind ?? "blob", columns: [{ name: "Id", type: "long" }], partitions: [], connectionStrings: ["file:///lake"] } } }) as never,
    },
    cursor: {
      claimOperation: async () => {
        if (claimed) return { found: false } as never;
        claimed = true;
        return { found: true, operationId: "op-1", database: "db", requestJson: request, abandoned: claim.abandoned ?? false, pending: claim.pending ?? [] } as never;
      },
      // A lease shorter than the runner's (30 s) is one given up: at once (0) or to be retried later.
      renewOperation: async (req) => (req.leaseTtlMs! < 30_000n ? (log.released++, log.releasedFor.push(req.leaseTtlMs!), { held: true, cancelRequested: false }) : { held: true, cancelRequested: ++log.renewals > hooks.cancelAfterRenewals }) as never,
      finishOperation: async (req) => (await hooks.finish(), log.finished.push({ state: req.state, status: req.status, artifacts: req.artifacts as unknown[] }), {}) as never,
      journalPending: async (req) => (await hooks.journal(req.operationOwner ?? ""), log.journaled.push(req.paths ?? []), {}) as never,
      clearPending: async (req) => (log.cleared.push(req.paths ?? []), {}) as never,
      getBackfill: async () => ({}) as never,
      setBackfillTotals: async () => ({}) as never,
      commitBackfillBatch: async () => ({}) as never,
      listExtents: async () => ({ extents: [] }) as never,
      listOperations: async () => ({ operations: [{ state: hooks.ledgerState }] }) as never,
      listArtifacts: async () => ({ artifacts: [] }) as never,
    },
    query: {
      executeToSpool: async () => ({ spoolHandle: "op-1", rowCount: 10n, encodedFiles: ["encoded/data_0.csv"] }) as never,
      discardSpool: async () => ({}) as never,
    },
    writer: {
      stageArtifacts: async () => ({ artifacts: [{ path: "file:///lake/export_op-1_0.csv", numRecords: 10n, sizeInBytes: 40n }] }) as never,
      uploadArtifacts: async () => (await hooks.upload(), { artifacts: [{ path: "file:///lake/export_op-1_0.csv", numRecords: 10n, sizeInBytes: 40n }] }) as never,
      discardStage: async () => ({}) as never,
      deleteArtifacts: async (req) => (await hooks.delete(), log.deleted.push(req.paths ?? []), {}) as never,
      findDeltaCommit: async (req) => (log.fences.push(req.fence ?? false), req.appId === "op-1" && req.txnVersion === 1n ? await hooks.deltaCommit() : { committed: false, artifacts: [] }) as never,
    },
  };
  return { peers, log, hooks };
}

async function runOnce(peers: OperationPeers) {
  const runner = new OperationRunner(peers, { retry: noRetry });
  await runner.poll();
  await runner.drain();
}

describe("batchesOf", () => {
  it("cuts a backfill's extents into batches of about the byte size asked, each at least one extent, with their records", () => {
    const extent = (cursor: number, sizeBytes: bigint, rowCount: bigint) => ({ cursor: String(cursor), sizeBytes, rowCount });
    expect(batchesOf([extent(1, 40n, 4n), extent(2, 70n, 7n), extent(3, 200n, 20n), extent(4, 10n, 1n)], 100n)).toEqual([
      { upTo: 2n, records: 11n },
      { upTo: 3n, records: 20n },
      { upTo: 4n, records: 1n },
    ]);
    expect(batchesOf([], 100n)).toEqual([]);
  });
});

describe("OperationRunner", () => {
  it("runs a taken operation to its commit: journaled before the upload, its artifacts committed with its end", async () => {
    const { peers, log } = fakes();
    await runOnce(peers);
    expect(log.journaled).toEqual([["file:///lake/export_op-1_0.csv"]]);
    expect(log.finished).toEqual([{ state: "Completed", status: "", artifacts: [expect.objectContaining({ path: "file:///lake/export_op-1_0.csv", numRecords: 10n })] }]);
    expect(log.deleted).toEqual([]);
  });

  it("claims each attempt under an owner of its own, so that a later claim of the same operation fences out an attempt still running", async () => {
    const { peers, log, hooks } = fakes();
    const claimedBy: string[] = [];
    const finishedBy: string[] = [];
    // The ledger gives op-1 back to this scheduler's next claim (its lease expired while its renewals came late), then has none.
    peers.cursor.claimOperation = async (req) => {
      if (claimedBy.length === 2) return { found: false } as never;
      claimedBy.push(req.owner!);
      const again = claimedBy.length === 2;
      return { found: true, operationId: "op-1", database: "db", requestJson: request, abandoned: again, pending: again ? ["file:///lake/export_op-1_0.csv"] : [] } as never;
    };
    const finish = peers.cursor.finishOperation;
    peers.cursor.finishOperation = async (req) => (finishedBy.push(req.owner!), finish(req));
    let release!: () => void;
    hooks.upload = () => new Promise<void>((resolve) => (release = resolve));
    const runner = new OperationRunner(peers, { retry: noRetry });
    // One look, two slots: the second claim comes while the first attempt uploads.
    await runner.poll();
    await vi.waitFor(() => expect(log.finished).toHaveLength(1));
    release();
    await runner.drain();
    expect(new Set(claimedBy).size).toBe(2);
    for (const owner of claimedBy) expect(owner.startsWith(`${runner.ownerId}/`)).toBe(true);
    // The second attempt cleaned up as the abandoned one's successor and ended it, under its own owner;
    // the first finished under its own, which the ledger (an owner check) refuses once another claimed it.
    expect(log.deleted).toEqual([["file:///lake/export_op-1_0.csv"]]);
    expect(finishedBy).toEqual([claimedBy[1], claimedBy[0]]);
  });

  it("stops when asked between steps: Canceled, and what it uploaded is deleted", async () => {
    const { peers, log, hooks } = fakes();
    // The check after the upload is the fourth (before the query, the stage, the upload, the commit).
    hooks.cancelAfterRenewals = 3;
    await runOnce(peers);
    expect(log.finished).toEqual([{ state: "Canceled", status: expect.stringContaining("canceled by request; the files it had written were removed"), artifacts: [] }]);
    expect(log.deleted).toEqual([["file:///lake/export_op-1_0.csv"]]);
    expect(log.cleared).toEqual([["file:///lake/export_op-1_0.csv"]]);
  });

  it("fails when the upload fails, deleting what it may have uploaded", async () => {
    const { peers, log, hooks } = fakes();
    hooks.upload = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage timed out");
    };
    await runOnce(peers);
    expect(log.finished).toEqual([{ state: "Failed", status: expect.stringContaining("storage timed out; the files it had written were removed"), artifacts: [] }]);
    expect(log.deleted).toEqual([["file:///lake/export_op-1_0.csv"]]);
  });

  it("deletes nothing when the answer to its commit was lost but the ledger has it Completed", async () => {
    const { peers, log, hooks } = fakes();
    hooks.finish = async () => {
      hooks.ledgerState = "Completed";
      throw new SpillwayError(ErrorCode.unavailable, "the answer was lost");
    };
    await runOnce(peers);
    expect(log.deleted).toEqual([]);
  });

  it("journals under its claim, and uploads nothing when the ledger refuses (another claim took the operation over)", async () => {
    const { peers, log, hooks } = fakes();
    const owners: string[] = [];
    let claimedAs = "";
    const claim = peers.cursor.claimOperation;
    peers.cursor.claimOperation = async (req) => ((claimedAs ||= req.owner ?? ""), claim(req));
    hooks.journal = async (owner) => {
      owners.push(owner);
      throw new SpillwayError(ErrorCode.aborted, "operation op-1 is no longer this scheduler's: the attempt uploads nothing");
    };
    let uploads = 0;
    hooks.upload = async () => void uploads++;
    await runOnce(peers);
    expect(owners).toEqual([claimedAs]);
    expect(uploads).toBe(0);
    expect(log.deleted).toEqual([]);
    // Its end is the other claim's.
    expect(log.finished).toEqual([]);
  });

  it("removes what it uploaded when its end is refused because another claim ended the operation (it was paused past its last check)", async () => {
    const { peers, log, hooks } = fakes();
    hooks.finish = async () => {
      // Taken as abandoned while this attempt was paused between its last lease check and its
      // end: that claim removed what the journal listed then (nothing uploaded yet) and failed it.
      hooks.ledgerState = "Failed";
      throw new SpillwayError(ErrorCode.aborted, "operation op-1 is no longer this scheduler's to finish");
    };
    await runOnce(peers);
    expect(log.deleted).toEqual([["file:///lake/export_op-1_0.csv"]]);
    expect(log.cleared).toEqual([["file:///lake/export_op-1_0.csv"]]);
    // Its end is the other claim's: this one records nothing more.
    expect(log.finished).toEqual([]);
  });

  it("leaves its files journaled when its end failed and the ledger cannot say how the operation ended", async () => {
    const { peers, log, hooks } = fakes();
    hooks.finish = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "the answer was lost");
    };
    peers.cursor.listOperations = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "the ledger is down");
    };
    await runOnce(peers);
    expect(log.deleted).toEqual([]);
    expect(log.journaled).toEqual([["file:///lake/export_op-1_0.csv"]]);
  });

  it("is not ended while its files cannot be removed: its lease is given up for another attempt", async () => {
    const { peers, log, hooks } = fakes();
    hooks.upload = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage timed out");
    };
    hooks.delete = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage still down");
    };
    await runOnce(peers);
    expect(log.finished).toEqual([]);
    // Not at once: the storage refused.
    expect(log.releasedFor).toEqual([10_000n]);
  });

  it("fails one whose scheduler died, after deleting what it had journaled, without running it again", async () => {
    const { peers, log } = fakes({ abandoned: true, pending: ["file:///lake/export_op-1_0.csv", "file:///lake/export_op-1_1.csv"] });
    let queried = false;
    peers.query.executeToSpool = async () => ((queried = true), { spoolHandle: "", rowCount: 0n, encodedFiles: [] }) as never;
    await runOnce(peers);
    expect(queried).toBe(false);
    expect(log.deleted).toEqual([["file:///lake/export_op-1_0.csv", "file:///lake/export_op-1_1.csv"]]);
    expect(log.finished).toEqual([{ state: "Failed", status: expect.stringContaining("did not end cleanly"), artifacts: [] }]);
  });
});

describe("OperationRunner, a one-shot export to a Delta table", () => {
  const committed = { committed: true, artifacts: [{ path: "file:///lake/part-00000.parquet", numRecords: 10n, sizeInBytes: 400n }] };

  it("once its upload returned (the log took the files), completes even when asked to cancel", async () => {
    const { peers, log, hooks } = fakes({ kind: "delta" });
    hooks.cancelAfterRenewals = 3;
    await runOnce(peers);
    expect(log.finished).toEqual([{ state: "Completed", status: "", artifacts: [expect.objectContaining({ path: "file:///lake/export_op-1_0.csv" })] }]);
    expect(log.deleted).toEqual([]);
  });

  it("completes when its upload failed after the log took the files (a lost answer)", async () => {
    const { peers, log, hooks } = fakes({ kind: "delta" });
    hooks.upload = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "the answer was lost");
    };
    hooks.deltaCommit = async () => committed;
    await runOnce(peers);
    expect(log.finished).toEqual([{ state: "Completed", status: "", artifacts: [expect.objectContaining({ path: "file:///lake/part-00000.parquet", numRecords: 10n })] }]);
    expect(log.deleted).toEqual([]);
  });

  it("whose scheduler died: Completed with the log's files when its commit is there, without running it again", async () => {
    const { peers, log, hooks } = fakes({ kind: "delta", abandoned: true, pending: ["file:///lake/part-00000.parquet"] });
    hooks.deltaCommit = async () => committed;
    let queried = false;
    peers.query.executeToSpool = async () => ((queried = true), { spoolHandle: "", rowCount: 0n, encodedFiles: [] }) as never;
    await runOnce(peers);
    expect(queried).toBe(false);
    expect(log.deleted).toEqual([]);
    expect(log.finished).toEqual([{ state: "Completed", status: "", artifacts: committed.artifacts }]);
  });

  it("whose scheduler died before the log took its files: fenced (no late upload can commit), Failed, its files deleted", async () => {
    const { peers, log } = fakes({ kind: "delta", abandoned: true, pending: ["file:///lake/part-00000.parquet"] });
    await runOnce(peers);
    expect(log.fences).toEqual([true]);
    expect(log.deleted).toEqual([["file:///lake/part-00000.parquet"]]);
    expect(log.finished).toEqual([{ state: "Failed", status: expect.stringContaining("did not end cleanly"), artifacts: [] }]);
  });

  it("whose scheduler died before it journaled anything: Failed without asking the log (nothing of it can be there)", async () => {
    const { peers, log } = fakes({ kind: "delta", abandoned: true, pending: [] });
    await runOnce(peers);
    expect(log.fences).toEqual([]);
    expect(log.finished).toEqual([{ state: "Failed", status: expect.stringContaining("did not end cleanly"), artifacts: [] }]);
  });

  it("is not ended while the log cannot be read: its lease is given up for another attempt", async () => {
    const { peers, log, hooks } = fakes({ kind: "delta" });
    hooks.upload = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage timed out");
    };
    hooks.deltaCommit = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage still down");
    };
    await runOnce(peers);
    expect(log.finished).toEqual([]);
    expect(log.deleted).toEqual([]);
    // Not retried in a tight loop: the next claim comes once the storage had a while.
    expect(log.releasedFor).toEqual([10_000n]);
  });
});

describe("OperationRunner, a managed backfill", () => {
  /** The batch a backfill's Delta txn version is of (batchTxn). */
  const batchOf = (version: bigint | undefined) => (version ?? 0n) >> 24n;

  /** A backfill of export E over two extents (cursors 10 and 20), in batches of one extent each. */
  function backfillFakes(kind = "blob", claim: { abandoned?: boolean; pending?: string[]; claim?: bigint; claimedBeforeNumbering?: boolean } = {}) {
    const log = { committed: [] as string[], deleted: [] as string[][], finished: [] as string[], staged: [] as string[], uploaded: 0, released: 0, releasedFor: [] as bigint[], committedArtifacts: [] as unknown[][] };
    const hooks = {
      /** After the commit landed (its answer lost). */
      commit: async (_upTo: string) => {},
      /** Before it lands (the ledger refused it). */
      refuse: async (_upTo: string) => {},
      heldAtCommit: true,
      /** The step at whose check a cancel is found. */
      cancelAt: "",
      /** Batch numbers a Delta log already holds (txn {bf-1, a version of batch n}: batchTxn). */
      inLog: new Set<bigint>(),
    };
    let done = "0";
    let claimed = false;
    /** Artifacts another claim committed (this one paused past its lease meanwhile). */
    const othersArtifacts: Array<{ path: string }> = [];
    /** Another claim commits the batch up to `upTo`, with a file of its own. */
    const anotherClaimCommits = (upTo: string) => {
      done = upTo;
      othersArtifacts.push({ path: `file:///lake/another-claim-${upTo}.csv` });
    };
    const spec = { id: "export-1", database: "db", name: "E", query: "SELECT Id FROM T", factTables: ["T"], dimensionTables: [], tables: [], properties: { sizeLimit: 1n }, externalTable: { name: "Lake", kind, columns: [{ name: "Id", type: "long" }], partitions: [], connectionStrings: ["file:///lake"] } };
    const peers: OperationPeers = {
      catalog: { listExportSpecs: async () => ({ specs: [spec] }) as never, planExport: async () => ({ spec }) as never },
      cursor: {
        claimOperation: async () => {
          if (claimed) return { found: false } as never;
          claimed = true;
          return { found: true, operationId: "bf-1", database: "db", requestJson: JSON.stringify({ kind: "Backfill", exportId: "export-1", name: "E", externalTable: "Lake" }), abandoned: claim.abandoned ?? false, pending: claim.pending ?? [], claim: claim.claim ?? 1n, claimedBeforeNumbering: claim.claimedBeforeNumbering ?? false } as never;
        },
        // A lease shorter than the runner's (30 s) is one given up: at once (0) or to be retried later.
        renewOperation: async (req) => (req.leaseTtlMs! < 30_000n && log.releasedFor.push(req.leaseTtlMs!), req.leaseTtlMs === 0n ? (log.released++, { held: true }) : { held: req.phase === "commit" ? hooks.heldAtCommit : true, cancelRequested: !!hooks.cancelAt && req.phase === hooks.cancelAt }) as never,
        finishOperation: async (req) => (log.finished.push(req.state ?? ""), {}) as never,
        journalPending: async () => ({}) as never,
        clearPending: async () => ({}) as never,
        getBackfill: async () => ({ progress: { toCursor: "20", fromCursor: "", batchesDone: BigInt(log.committed.length), batchesTotal: 2n }, doneCursor: done }) as never,
        setBackfillTotals: async () => ({}) as never,
        commitBackfillBatch: async (req) => {
          await hooks.refuse(req.upToCursor ?? "");
          done = req.upToCursor ?? done;
          log.committed.push(req.upToCursor ?? "");
          log.committedArtifacts.push(req.artifacts ?? []);
          await hooks.commit(req.upToCursor ?? "");
          return {} as never;
        },
        listExtents: async (req) => ({ extents: [{ cursor: "10", sizeBytes: 5n, rowCount: 3n }, { cursor: "20", sizeBytes: 5n, rowCount: 4n }].filter((e) => BigInt(e.cursor) > BigInt(req.afterCursor || "0")) }) as never,
        listOperations: async () => ({ operations: [] }) as never,
        listArtifacts: async () => ({ artifacts: [...(log.committedArtifacts.flat() as Array<{ path: string }>), ...othersArtifacts] }) as never,
      },
      query: { executeToSpool: async (req) => ({ spoolHandle: req.spoolName, rowCount: 3n, encodedFiles: ["e.csv"] }) as never, discardSpool: async () => ({}) as never },
      writer: {
        stageArtifacts: async (req) =>
          (hooks.inLog.has(batchOf(req.deltaTxnVersion))
            ? { artifacts: [{ path: `file:///lake/in-log-${batchOf(req.deltaTxnVersion)}.parquet`, numRecords: 3n, sizeInBytes: 9n }], alreadyCommitted: true, committedToCursor: req.toCursor }
            : (log.staged.push(req.nameStem ?? ""), { artifacts: [{ path: `file:///lake/${req.nameStem}.csv`, numRecords: 3n, sizeInBytes: 9n }] })) as never,
        uploadArtifacts: async (req) => (log.uploaded++, { artifacts: [{ path: `file:///lake/${log.staged.at(-1)}.csv`, numRecords: 3n, sizeInBytes: 9n }], stage: req.stageId }) as never,
        discardStage: async () => ({}) as never,
        deleteArtifacts: async (req) => (log.deleted.push(req.paths ?? []), {}) as never,
        findDeltaCommit: async (req) => ({ committed: kind === "delta" && hooks.inLog.has(batchOf(req.txnVersion)), artifacts: [] }) as never,
      },
    };
    return { peers, log, hooks, anotherClaimCommits };
  }

  it("commits each batch once, in order, and completes", async () => {
    const { peers, log } = backfillFakes();
    await runOnce(peers);
    expect(log.committed).toEqual(["10", "20"]);
    expect(log.finished).toEqual(["Completed"]);
    // Each attempt's files carry a token of its own claim.
    expect(log.staged.every((n) => /^export-1_backfill_bf-1_\d_[0-9a-f]{8}$/.test(n))).toBe(true);
  });

  it("goes on when the answer to a batch's commit was lost but the commit landed", async () => {
    const { peers, log, hooks } = backfillFakes();
    hooks.commit = async (upTo) => {
      if (upTo === "10") throw new SpillwayError(ErrorCode.unavailable, "the answer was lost");
    };
    await runOnce(peers);
    expect(log.committed).toEqual(["10", "20"]);
    expect(log.deleted).toEqual([]);
    expect(log.finished).toEqual(["Completed"]);
  });

  it("when another scheduler took it, deletes only its own files and does not end it", async () => {
    const { peers, log, hooks } = backfillFakes();
    hooks.heldAtCommit = false;
    await runOnce(peers);
    expect(log.committed).toEqual([]);
    expect(log.finished).toEqual([]);
    expect(log.deleted).toEqual([[`file:///lake/${log.staged[0]}.csv`]]);
    expect(log.deleted[0]![0]).toMatch(/_[0-9a-f]{8}\.csv$/);
  });

  it.each([
    ["refused for the lease", new SpillwayError(ErrorCode.aborted, "backfill bf-1 is no longer this scheduler's")],
    ["whose answer was lost", new SpillwayError(ErrorCode.unavailable, "the answer was lost")],
  ])("deletes its files when its commit, %s, did not land though another claim committed the same batch (it was paused past its lease)", async (_, refusal) => {
    const { peers, log, hooks, anotherClaimCommits } = backfillFakes();
    hooks.refuse = async (upTo) => {
      anotherClaimCommits(upTo);
      throw refusal;
    };
    await runOnce(peers);
    // The backfill's progress is at the batch's end, but by the other claim's commit, not this one's.
    expect(log.committed).toEqual([]);
    expect(log.deleted).toEqual([[`file:///lake/${log.staged[0]}.csv`]]);
    expect(log.finished).toEqual(refusal.code === ErrorCode.aborted ? [] : ["Failed"]);
  });

  it("to a Delta table: a batch the log already has (an earlier claim's upload) is committed with the log's files, not uploaded again", async () => {
    const { peers, log, hooks } = backfillFakes("delta");
    hooks.inLog.add(1n);
    await runOnce(peers);
    expect(log.committed).toEqual(["10", "20"]);
    expect(log.committedArtifacts[0]).toEqual([expect.objectContaining({ path: "file:///lake/in-log-1.parquet" })]);
    expect(log.uploaded).toBe(1);
    expect(log.finished).toEqual(["Completed"]);
  });

  it("to a Delta table: a batch whose ledger commit failed after the log took it is left for the next claim, nothing deleted", async () => {
    const { peers, log, hooks } = backfillFakes("delta");
    hooks.refuse = async (upTo) => {
      if (upTo === "10") {
        hooks.inLog.add(1n);
        throw new SpillwayError(ErrorCode.failedPrecondition, "refused");
      }
    };
    await runOnce(peers);
    expect(log.committed).toEqual([]);
    expect(log.deleted).toEqual([]);
    expect(log.finished).toEqual([]);
    expect(log.released).toBe(1);
  });

  it("to a Delta table: once another claim holds the lease, does not fence the batch's txn (that claim may be uploading it)", async () => {
    const { peers, log, hooks, anotherClaimCommits } = backfillFakes("delta");
    const fenced: bigint[] = [];
    const find = peers.writer.findDeltaCommit;
    peers.writer.findDeltaCommit = async (req) => (req.fence && fenced.push(req.txnVersion ?? 0n), find(req));
    hooks.refuse = async (upTo) => {
      anotherClaimCommits(upTo);
      throw new SpillwayError(ErrorCode.aborted, "backfill bf-1 is no longer this scheduler's");
    };
    await runOnce(peers);
    expect(fenced).toEqual([]);
    expect(log.finished).toEqual([]);
  });

  it("is not ended while the catalog cannot say whether its export is still there: its lease is given up, to be tried again in a while", async () => {
    const { peers, log } = backfillFakes();
    peers.catalog.listExportSpecs = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "catalog restarting");
    };
    await runOnce(peers);
    expect(log.finished).toEqual([]);
    expect(log.releasedFor).toEqual([10_000n]);
  });

  it("removes what an abandoned attempt journaled before anything else", async () => {
    const { peers, log } = backfillFakes("blob", { abandoned: true, pending: ["file:///lake/abandoned.csv"] });
    const uploadsAtDelete: number[] = [];
    const del = peers.writer.deleteArtifacts;
    peers.writer.deleteArtifacts = async (req) => (uploadsAtDelete.push(log.uploaded), del(req));
    await runOnce(peers);
    expect(log.deleted[0]).toEqual(["file:///lake/abandoned.csv"]);
    expect(uploadsAtDelete[0]).toBe(0);
    expect(log.committed).toEqual(["10", "20"]);
  });

  /** A backfill's steps that touch the Delta log or the files, in order. */
  function recordSteps(peers: OperationPeers): string[] {
    const steps: string[] = [];
    const { findDeltaCommit, deleteArtifacts, stageArtifacts } = peers.writer;
    peers.writer.findDeltaCommit = async (req) => (steps.push(`find ${req.txnVersion} from ${req.sinceVersion}${req.fence ? ", fenced" : ""}`), findDeltaCommit(req));
    peers.writer.deleteArtifacts = async (req) => (steps.push(`delete ${req.paths?.join(" ")}`), deleteArtifacts(req));
    peers.writer.stageArtifacts = async (req) => (steps.push(`stage ${req.deltaTxnVersion} from ${req.deltaTxnSince}`), stageArtifacts(req));
    return steps;
  }
  const BAND = 1n << 24n;

  it("to a Delta table: a claim taking over fences the next batch's versions of the claims before it, then removes their files, and commits each batch under its own version", async () => {
    const { peers, log } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/abandoned.parquet"], claim: 3n });
    const steps = recordSteps(peers);
    await runOnce(peers);
    // Claim 2's version of batch 1 and all below it are fenced before claim 1's or 2's files go,
    // so a claim paused between its upload and its log commit cannot commit files that are gone.
    expect(steps).toEqual([`find ${BAND + 2n} from ${BAND}, fenced`, "delete file:///lake/abandoned.parquet", `stage ${BAND + 3n} from ${BAND}`, `stage ${2n * BAND + 3n} from ${2n * BAND}`]);
    expect(log.committed).toEqual(["10", "20"]);
    expect(log.finished).toEqual(["Completed"]);
  });

  /** The log holds, for batch 1, the commit `found` gives (a version and the first of its batch, as asked), up to cursor `toCursor`. */
  const inTheLog = (found: (version: bigint, since: bigint) => boolean, toCursor: string, path = "file:///lake/earlier-claim.parquet") => async (req: { txnVersion?: bigint; sinceVersion?: bigint }) =>
    (found(req.txnVersion ?? 0n, req.sinceVersion ?? 0n) ? { committed: true, artifacts: [{ path, numRecords: 7n, sizeInBytes: 9n }], toCursor } : { committed: false, artifacts: [] }) as never;

  it("to a Delta table: a claim taking over commits the first batch as an earlier claim's log commit has it (its range and files), before any query, even one that now keeps no record of it", async () => {
    const { peers, log } = backfillFakes("delta", { abandoned: true, claim: 2n });
    let queried = 0;
    // The export's query was altered since that claim: it keeps none of these records now.
    peers.query.executeToSpool = async (req) => (queried++, { spoolHandle: req.spoolName, rowCount: 0n, encodedFiles: [] }) as never;
    peers.writer.findDeltaCommit = inTheLog((version, since) => since === BAND && version >= BAND + 1n, "20");
    const steps = recordSteps(peers);
    await runOnce(peers);
    // Claim 1 had committed both extents as batch 1 (a larger sizeLimit then): one batch, its files, nothing queried or uploaded.
    // It journaled nothing (its files are the table's): nothing is fenced.
    expect(steps).toEqual([`find ${BAND + 1n} from ${BAND}`]);
    expect(queried).toBe(0);
    expect(log.committed).toEqual(["20"]);
    expect(log.committedArtifacts).toEqual([[expect.objectContaining({ path: "file:///lake/earlier-claim.parquet" })]]);
    expect(log.uploaded).toBe(0);
    expect(log.finished).toEqual(["Completed"]);
  });

  it("to a Delta table: a batch an earlier claim committed to the log is committed by the claim taking over even once the backfill was canceled", async () => {
    const { peers, log, hooks } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/earlier-claim.parquet"], claim: 2n });
    peers.writer.findDeltaCommit = inTheLog((version, since) => since === BAND && version >= BAND + 1n, "10");
    hooks.cancelAt = "batch 2 of 2";
    await runOnce(peers);
    expect(log.committed).toEqual(["10"]);
    expect(log.committedArtifacts).toEqual([[expect.objectContaining({ path: "file:///lake/earlier-claim.parquet" })]]);
    expect(log.finished).toEqual(["Canceled"]);
  });

  it.each([1n, 3n])("to a Delta table: a claim taking over (claim %s) an operation an older Spillway had claimed, while files are journaled, also finds a batch committed under its number alone", async (claim) => {
    const { peers, log } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/earlier-claim.parquet"], claim, claimedBeforeNumbering: true });
    peers.writer.findDeltaCommit = inTheLog((version, since) => version === 1n && since === 0n, "10");
    const steps = recordSteps(peers);
    await runOnce(peers);
    expect(steps.slice(0, 3)).toEqual([`find ${BAND + claim - 1n} from ${BAND}, fenced`, "find 1 from 0", "delete file:///lake/earlier-claim.parquet"]);
    expect(log.committed).toEqual(["10", "20"]);
    expect(log.committedArtifacts[0]).toEqual([expect.objectContaining({ path: "file:///lake/earlier-claim.parquet" })]);
    expect(log.finished).toEqual(["Completed"]);
  });

  it("to a Delta table: a batch an earlier claim committed to the log is never ended without its ledger commit: when that fails, the lease is given up for a while", async () => {
    const { peers, log, hooks } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/earlier-claim.parquet"], claim: 2n });
    peers.writer.findDeltaCommit = inTheLog((version, since) => since === BAND && version >= BAND + 1n, "10");
    hooks.refuse = async () => {
      throw new SpillwayError(ErrorCode.failedPrecondition, "refused");
    };
    await runOnce(peers);
    expect(log.committed).toEqual([]);
    expect(log.finished).toEqual([]);
    expect(log.releasedFor).toEqual([10_000n]);
  });

  it("to a Delta table: a claim taking over takes a version before claims were numbered that the log has passed, answered as held without a range, for no commit: the backfill ends when canceled", async () => {
    const { peers, log, hooks } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/abandoned.parquet"], claim: 3n, claimedBeforeNumbering: true });
    // As the writer answers an exact version below the log's txn of the operation (its own fence just above).
    peers.writer.findDeltaCommit = async (req) => ({ committed: req.txnVersion === 1n && !req.fence, artifacts: [], toCursor: "" }) as never;
    hooks.cancelAt = "batch 1 of 2";
    await runOnce(peers);
    expect(log.committed).toEqual([]);
    expect(log.finished).toEqual(["Canceled"]);
  });

  it("to a Delta table: a claim taking over a backfill whose export was dropped fences the earlier claims' versions before it removes their files", async () => {
    const { peers, log } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/abandoned.parquet"], claim: 2n });
    peers.catalog.listExportSpecs = async () => ({ specs: [] }) as never;
    const steps = recordSteps(peers);
    await runOnce(peers);
    expect(steps).toEqual([`find ${BAND + 1n} from ${BAND}, fenced`, "delete file:///lake/abandoned.parquet"]);
    expect(log.finished).toEqual(["Failed"]);
  });

  it("to a Delta table: a claim taking over removes nothing while the log cannot be read, and gives the lease up for a while", async () => {
    const { peers, log } = backfillFakes("delta", { abandoned: true, pending: ["file:///lake/abandoned.parquet"], claim: 2n });
    peers.writer.findDeltaCommit = async () => {
      throw new SpillwayError(ErrorCode.unavailable, "storage down");
    };
    const steps = recordSteps(peers);
    await runOnce(peers);
    expect(steps).toEqual([`find ${BAND + 1n} from ${BAND}, fenced`]);
    expect(log.deleted).toEqual([]);
    expect(log.finished).toEqual([]);
    expect(log.releasedFor).toEqual([10_000n]);
  });

  it("checks for a cancel before each upload, not only before its query (which ran beside the batch before)", async () => {
    const { peers, log, hooks } = backfillFakes();
    hooks.cancelAt = "upload of batch 2 of 2";
    await runOnce(peers);
    expect(log.committed).toEqual(["10"]);
    expect(log.uploaded).toBe(1);
    expect(log.finished).toEqual(["Canceled"]);
  });

  it("to a Delta table: a batch the log already has is never ended without its ledger commit, even when that commit is refused", async () => {
    const { peers, log, hooks } = backfillFakes("delta");
    hooks.inLog.add(1n);
    hooks.refuse = async (upTo) => {
      if (upTo === "10") throw new SpillwayError(ErrorCode.unavailable, "ledger restarting");
    };
    await runOnce(peers);
    expect(log.committed).toEqual([]);
    expect(log.finished).toEqual([]);
    expect(log.released).toBe(1);
  });
});
