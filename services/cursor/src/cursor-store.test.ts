import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DuckDBInstance } from "@duckdb/node-api";
import { CursorStore } from "./cursor-store.js";
import { cursorStoreContract } from "./cursor-store.contract.js";

cursorStoreContract("DuckDB", (dir, now) => CursorStore.open(dir, now));

describe("CursorStore on DuckDB", () => {
  it("counts the committed runs of a store written before it kept that count", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-cursor-upgrade-"));
    try {
      let store = await CursorStore.open(dir);
      await store.initExportState("x1", "db", "E");
      const args = { exportId: "x1", name: "E", owner: "a", leaseTtlMs: 60_000, upTo: (c: bigint) => c };
      for (const runId of ["r1", "r2"]) {
        const run = (await store.startRun({ ...args, runId }))!;
        await store.commitRun("x1", runId, "Ext", run.from, run.to, [], "a");
      }
      await store.close();
      // The store as an earlier version left it: no count column.
      const instance = await DuckDBInstance.create(join(dir, "cursor.duckdb"));
      const connection = await instance.connect();
      await connection.run("ALTER TABLE export_state DROP COLUMN completed_runs");
      connection.closeSync();
      instance.closeSync();

      store = await CursorStore.open(dir);
      const started = await store.startRun({ ...args, runId: "r3" });
      expect(started).toMatchObject({ runNumber: 3n, completedRuns: 2n });
      await store.commitRun("x1", "r3", "Ext", started!.from, started!.to, [], "a");
      expect(await store.startRun({ ...args, runId: "r4" })).toMatchObject({ runNumber: 4n, completedRuns: 3n });
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
