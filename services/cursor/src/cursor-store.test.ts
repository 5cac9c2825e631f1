import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckDBInstance } from "@duckdb/node-api";
import pg from "pg";
import { CursorStore } from "./cursor-store.js";
import { cursorStoreContract } from "./cursor-store.contract.js";
import { usePostgres, type Postgres } from "../../../test/support/postgres.js";

cursorStoreContract("DuckDB", (dir, now) => CursorStore.open(dir, now));

describe("CursorStore on PostgreSQL", () => {
  let postgres: Postgres;
  beforeAll(async () => {
    postgres = await usePostgres();
  });
  afterAll(() => postgres?.stop());
  cursorStoreContract("PostgreSQL", (url, now) => CursorStore.open("", now, url), {
    create: () => postgres.createDatabase(),
    remove: (url) => postgres.dropDatabase(url),
  }, { shared: true });

  it("gives cursors in visibility order while several nodes commit at once: a reader never sees one appear below one it saw", async () => {
    const url = await postgres.createDatabase();
    const nodes = await Promise.all([1, 2, 3, 4].map(() => CursorStore.open("", Date.now, url)));
    const reader = await CursorStore.open("", Date.now, url);
    try {
      const perNode = 40;
      let writing = true;
      const commits = Promise.all(
        nodes.map(async (node, n) => {
          const cursors: bigint[] = [];
          for (let i = 0; i < perNode; i++) {
            cursors.push(await node.commitExtent({ database: "db", table: "T", extentId: `n${n}-${i}`, path: `p/n${n}-${i}`, rowCount: 1n, sizeBytes: 1n }));
          }
          return cursors;
        }),
      ).finally(() => (writing = false));
      const seen = new Set<bigint>();
      let highest = -1n;
      let listings = 0;
      const violations: string[] = [];
      while (writing || listings === 0) {
        const { extents, cursor } = await reader.listExtents("db", ["T"], 0n);
        listings++;
        const fresh = extents.map((e) => e.cursor).filter((c) => !seen.has(c));
        for (const c of fresh) if (c <= highest) violations.push(`cursor ${c} appeared after ${highest} was seen`);
        if (extents.length < seen.size) violations.push(`a listing lost extents (${extents.length} < ${seen.size})`);
        if (extents.some((e) => e.cursor > cursor)) violations.push(`a listing at cursor ${cursor} showed a later extent`);
        for (const c of fresh) seen.add(c);
        for (const c of seen) if (c > highest) highest = c;
      }
      const byNode = await commits;
      const all = byNode.flat();
      expect(violations).toEqual([]);
      expect(new Set(all).size).toBe(nodes.length * perNode);
      for (const cursors of byNode) expect(cursors).toEqual([...cursors].sort((a, b) => (a < b ? -1 : 1)));
      expect((await reader.listExtents("db", ["T"], 0n)).extents.map((e) => e.cursor)).toEqual([...all].sort((a, b) => (a < b ? -1 : 1)));
      expect(listings).toBeGreaterThan(1);
    } finally {
      await Promise.all([...nodes, reader].map((s) => s.close()));
      await postgres.dropDatabase(url);
    }
  });

  it("opens a store of the version that kept leases in a table of their own on several nodes at once: each goes on, whichever moved them", async () => {
    const url = await postgres.createDatabase();
    const first = await CursorStore.open("", Date.now, url);
    await first.initExportState("x1", "db", "E");
    await first.close();
    // The store as that version left it: a leases table, no lease columns, one lease held.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const sql of OLD_LEASES) await client.query(sql);
      await client.query("INSERT INTO leases VALUES ('x1', 'old', now()::TIMESTAMP + INTERVAL '1 hour')");
    } finally {
      await client.end();
    }
    // Four nodes of this version start at once: one moves the leases, the others find them moved.
    const nodes = await Promise.all([1, 2, 3, 4].map(() => CursorStore.open("", Date.now, url)));
    try {
      for (const node of nodes) expect((await node.getExportStates(["x1"]))[0]).toMatchObject({ isRunning: true });
      expect(await nodes[1]!.acquireLease("x1", "a", 60_000)).toBe(false);
      expect(await nodes[2]!.renewLease("x1", "old", 60_000)).toBe(true);
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
      await postgres.dropDatabase(url);
    }
  });
});

/** Runs `statements` on the store's DuckDB file as they are (the store closed), returning the rows of the last. */
async function onStoreFile(dir: string, statements: string[]): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(join(dir, "cursor.duckdb"));
  const connection = await instance.connect();
  try {
    let rows: unknown[][] = [];
    for (const sql of statements) rows = (await connection.runAndReadAll(sql)).getRows();
    return rows;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** What the version before leases moved into export_state had instead. */
const OLD_LEASES = [
  "ALTER TABLE export_state DROP COLUMN lease_owner",
  "ALTER TABLE export_state DROP COLUMN lease_expires_at",
  "CREATE TABLE leases (export_id VARCHAR NOT NULL, owner VARCHAR NOT NULL, expires_at TIMESTAMP NOT NULL)",
];

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
      // The store as an earlier version left it: no count column, leases in a table of their own.
      await onStoreFile(dir, ["ALTER TABLE export_state DROP COLUMN completed_runs", ...OLD_LEASES]);

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

  it("tells the claims of an operation an older version had claimed (whose backfill may have committed a batch under its number alone) from those of one it had not", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-cursor-upgrade-"));
    try {
      let store = await CursorStore.open(dir);
      for (const id of ["claimed-then", "waiting-then"]) await store.createOperation(id, "db", "Backfill", "{}");
      await store.close();
      // The store as a version before claims were numbered left it: one operation claimed, the other waiting.
      await onStoreFile(dir, ["ALTER TABLE operations DROP COLUMN claimed_before_numbering", "ALTER TABLE operations DROP COLUMN claims", "UPDATE operations SET owner = 'old', expires_at = TIMESTAMP '2000-01-01' WHERE operation_id = 'claimed-then'"]);

      store = await CursorStore.open(dir);
      expect(await store.claimOperation("a", 60_000)).toMatchObject({ operation: { operationId: "claimed-then" }, abandoned: true, claim: 1n, claimedBeforeNumbering: true });
      expect(await store.claimOperation("a", 60_000)).toMatchObject({ operation: { operationId: "waiting-then" }, abandoned: false, claim: 1n, claimedBeforeNumbering: false });
      // Given up: the next claims say the same.
      await store.renewOperation("claimed-then", "a", 0);
      await store.renewOperation("waiting-then", "a", 0);
      await new Promise((r) => setTimeout(r, 5));
      const next = [await store.claimOperation("b", 60_000), await store.claimOperation("b", 60_000)];
      expect(next.map((c) => [c?.operation.operationId, c?.claim, c?.claimedBeforeNumbering])).toEqual([
        ["claimed-then", 2n, true],
        ["waiting-then", 2n, false],
      ]);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("opens a store of the version that kept leases in a table of their own: the table goes, leases live in the export's row", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-cursor-upgrade-"));
    try {
      let store = await CursorStore.open(dir);
      await store.initExportState("x1", "db", "E");
      await store.close();
      // The store as that version left it: a leases table, no lease columns.
      const held = new Date(Date.now() + 3_600_000);
      await onStoreFile(dir, [...OLD_LEASES, `INSERT INTO leases VALUES ('x1', 'old', '${held.toISOString().replace("T", " ").replace("Z", "")}'::TIMESTAMP)`]);

      // The lease held then is held still, by its owner, until it is released.
      store = await CursorStore.open(dir);
      expect((await store.getExportStates(["x1"]))[0]).toMatchObject({ isRunning: true });
      expect(await store.acquireLease("x1", "a", 60_000)).toBe(false);
      expect(await store.renewLease("x1", "old", 60_000)).toBe(true);
      await store.releaseLease("x1", "old");
      expect(await store.acquireLease("x1", "a", 60_000)).toBe(true);
      expect(await store.acquireLease("x1", "b", 60_000)).toBe(false);
      await store.close();
      const tables = await onStoreFile(dir, ["SELECT table_name FROM information_schema.tables WHERE table_name = 'leases'"]);
      expect(tables).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
