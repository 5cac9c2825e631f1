import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it, vi } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { RunRequestBoard, type RunRequest } from "./run-request-board.js";

/** Reads the watcher's requests into `seen` until `stop` aborts. */
function watching(board: RunRequestBoard<string>, seen: RunRequest[]) {
  const stop = new AbortController();
  const done = (async () => {
    for await (const r of board.watch(stop.signal)) seen.push(r);
  })();
  return { stop: async () => (stop.abort(), await done) };
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
};

describe("RunRequestBoard", () => {
  it("hands a request to a watcher and the outcome back to whoever asked", async () => {
    const board = new RunRequestBoard<string>();
    const seen: RunRequest[] = [];
    const watcher = watching(board, seen);
    const outcome = board.request("db", "E", { traceparent: "00-abc-def-01" });
    await until(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ database: "db", name: "E", traceparent: "00-abc-def-01" });
    board.complete(seen[0]!.requestId, { outcome: "Completed" });
    expect(await outcome).toBe("Completed");
    await watcher.stop();
  });

  it("keeps requests made before any watcher came, and passes on an error", async () => {
    const board = new RunRequestBoard<string>();
    const outcome = board.request("db", "Early");
    const seen: RunRequest[] = [];
    const watcher = watching(board, seen);
    await until(() => seen.length === 1);
    board.complete(seen[0]!.requestId, { error: new SpillwayError(ErrorCode.notFound, "gone") });
    await expect(outcome).rejects.toMatchObject({ code: ErrorCode.notFound });
    await watcher.stop();
  });

  it("gives a request whose watcher left unfinished to the next watcher", async () => {
    const board = new RunRequestBoard<string>();
    const first: RunRequest[] = [];
    const a = watching(board, first);
    const outcome = board.request("db", "E");
    await until(() => first.length === 1);
    await a.stop();
    const second: RunRequest[] = [];
    const b = watching(board, second);
    await until(() => second.length === 1);
    expect(second[0]!.requestId).toBe(first[0]!.requestId);
    board.complete(second[0]!.requestId, { outcome: "Completed" });
    expect(await outcome).toBe("Completed");
    await b.stop();
  });

  it("refuses a request handed back, once its first wait is over, unless another scheduler takes it in time", async () => {
    vi.useFakeTimers();
    try {
      const board = new RunRequestBoard<string>(1000);
      const seen: RunRequest[] = [];
      const a = watching(board, seen);
      const outcome = board.request("db", "E");
      let refused: unknown;
      outcome.catch((err: unknown) => (refused = err));
      await vi.advanceTimersByTimeAsync(1);
      expect(seen).toHaveLength(1);
      // A long run: its first wait ends while a scheduler holds it.
      await vi.advanceTimersByTimeAsync(5000);
      expect(refused).toBeUndefined();
      await a.stop();
      await vi.advanceTimersByTimeAsync(999);
      expect(refused).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(refused).toMatchObject({ code: ErrorCode.unavailable, message: expect.stringContaining("the run may have gone ahead") });
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses as UNAVAILABLE a request no scheduler takes in time", async () => {
    const board = new RunRequestBoard<string>(50);
    await expect(board.request("db", "E")).rejects.toMatchObject({ code: ErrorCode.unavailable, message: expect.stringContaining("is the scheduler running?") });
  });

  it("keeps no memory per request a watcher served: a long-lived scheduler asks for runs all day", async () => {
    const board = new RunRequestBoard<string>();
    const stop = new AbortController();
    const watcher = (async () => {
      for await (const r of board.watch(stop.signal)) board.complete(r.requestId, { outcome: "Completed" });
    })();
    const serve = async (count: number) => {
      for (let i = 0; i < count; i++) expect(await board.request("db", "E")).toBe("Completed");
    };
    await serve(100);
    const before = heapAfterCollection();
    await serve(20_000);
    // About 300 bytes a request when each wait left a reaction behind (6 MB here); a heap
    // that does not grow moves by a few kilobytes.
    expect(heapAfterCollection() - before).toBeLessThan(1_000_000);
    stop.abort();
    await watcher;
  });
});

/** The heap in use once a full collection has run. */
function heapAfterCollection(): number {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  return process.memoryUsage().heapUsed;
}
