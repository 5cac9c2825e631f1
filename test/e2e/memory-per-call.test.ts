import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { csv, newContainer, withSpillwayAndAzurite } from "../support/fixtures.js";
import { growth, objectCounts } from "../support/heap-snapshot.js";

/** Rounds of calls between two heap snapshots. */
const ROUNDS = 50;

/**
 * A Spillway process runs for months: a call that leaves an object behind (a reaction on a
 * promise that lives as long as the process, a listener, an entry nobody deletes) adds up to
 * an out-of-memory. Here the calls a busy day is made of are repeated, and three heap
 * snapshots of the process taken between rounds: a constructor whose objects grew by half a
 * round's worth or more in both intervals is held per call. Growth in one interval only is a
 * cache filling or code warming up. The snapshots are of the main thread's heap: the Kusto
 * parser's worker thread is not in them. The scheduler's own runs go on beside the rounds, a
 * few per interval, so only a leak of several objects a scheduled run shows.
 */
describe("memory per call", () => {
  const snapshots = mkdtempSync(join(tmpdir(), "spillway-heap-"));
  const env = withSpillwayAndAzurite("all", { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir="${snapshots}"`.trim() });
  afterAll(() => rmSync(snapshots, { recursive: true, force: true }));

  /** Has the process write a heap snapshot; resolves with its object counts once written. */
  async function snapshot(): Promise<Map<string, number>> {
    const before = new Set(readdirSync(snapshots));
    env.sw.signal("SIGUSR2");
    for (let i = 0; i < 600; i++) {
      const written = readdirSync(snapshots).find((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
      // The file is there as the process starts writing it, and the process answers nothing meanwhile.
      if (written) {
        await env.sw.catalog.listTables({});
        // Tens of megabytes each: gone once read.
        const counts = objectCounts(join(snapshots, written));
        rmSync(join(snapshots, written));
        return counts;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the process wrote no heap snapshot within 60 s");
  }

  it("keeps no object per ingestion, run, query, Kusto command or show call", async () => {
    const { sw, azurite } = env;
    const container = await newContainer(azurite, "memory");
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "parquet", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }], connectionStrings: [azurite.connectionString(`${container}/asked`)] });
    await sw.catalog.createExternalTable({ name: "Scheduled", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }], connectionStrings: [azurite.connectionString(`${container}/scheduled`)] });
    await sw.catalog.createOrAlterContinuousExport({ name: "Asked", externalTable: "Lake", query: "SELECT Id, Key FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    // The scheduler's own runs, every second, beside the calls.
    await sw.catalog.createOrAlterContinuousExport({ name: "EverySecond", externalTable: "Scheduled", query: "SELECT Id, Key FROM Events", properties: { intervalBetweenRuns: { seconds: 1n } } });
    let id = 0;
    const rounds = async (count: number) => {
      for (let i = 0; i < count; i++) {
        await sw.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 10 }, () => [++id, `k${id % 7}`])) });
        const run = await sw.catalog.runContinuousExportNow({ name: "Asked" });
        expect(run.result).toBe("Completed");
        for await (const _ of sw.kusto.execute({ text: "Events | summarize count() by Key | take 3" })) void _;
        for await (const _ of sw.kusto.execute({ text: ".show continuous-exports" })) void _;
        for await (const _ of sw.query.query({ query: "SELECT count(*) FROM Events" })) void _;
        await sw.catalog.showRunHistory({ name: "Asked" });
        await sw.catalog.showContinuousExport({ name: "EverySecond" });
      }
    };
    await rounds(ROUNDS);
    const first = await snapshot();
    await rounds(ROUNDS);
    const second = await snapshot();
    await rounds(ROUNDS);
    const third = await snapshot();
    const early = growth(first, second);
    const late = growth(second, third);
    const heldPerCall = [...late].filter(([key, n]) => n >= ROUNDS / 2 && (early.get(key) ?? 0) >= ROUNDS / 2).map(([key, n]) => `${key}: +${early.get(key)}, then +${n}`);
    expect(heldPerCall).toEqual([]);
  }, 300_000);
});
