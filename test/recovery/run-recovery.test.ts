import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { DuckDBInstance } from "@duckdb/node-api";
import { openStorageTarget } from "@spillway/storage";
import { readDeltaTable } from "../support/delta-reader.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "@spillway/config";
import { CatalogService, QueryService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { startSpillway, type RunningSpillway } from "../../services/app/src/index.js";
import { CursorStore } from "../../services/cursor/src/cursor-store.js";
import { readArtifacts } from "../support/artifact-reader.js";
import { csv, sortBy } from "../support/fixtures.js";

// In-process Spillway on a real data directory, with an injectable clock: the
// recovery paths of a run (a crashed attempt's files, 7 days of permanent failures).

const DAY = 86_400_000;

describe("run recovery", () => {
  let dir: string;
  let app: RunningSpillway | undefined;
  let clock = Date.now();
  const open = async () => {
    app = await startSpillway(loadConfig(["--listen", "127.0.0.1:0", "--data-dir", join(dir, "data"), "--min-interval", "1s", "--scheduler-tick", "1h", "--http-listen", "off", "--metrics-listen", "off"], {}), {
      log: () => {},
      now: () => clock,
    });
    const address = `127.0.0.1:${app.port}`;
    return { catalog: createGrpcClient(CatalogService, address), query: createGrpcClient(QueryService, address) };
  };
  afterEach(async () => {
    await app?.stop();
    app = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function setUp(lake: string) {
    const c = await open();
    await c.catalog.createTable({ name: "T", columns: [{ name: "Id", type: "long" }] });
    await c.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}`] });
    const created = await c.catalog.createOrAlterContinuousExport({ name: "E", externalTable: "Lake", query: "SELECT Id FROM T", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    return { ...c, exportId: created.export!.id };
  }

  it("removes the files of an attempt that died between upload and commit, then exports its records once", async () => {
    dir = mkdtempSync(join(tmpdir(), "recovery-"));
    const lake = join(dir, "lake");
    const c = await setUp(lake);
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[1], [2], [3]]) });
    await app!.stop();

    await leaveCrashedAttempt(c.exportId, lake);

    const again = await open();
    const shown = (await again.catalog.showContinuousExport({ name: "E" })).export!;
    expect(shown.lastRunResult).toBe("Failed");
    const { failures } = await again.catalog.showFailures({ name: "E" });
    expect(failures.map((f) => f.details)).toEqual([expect.stringMatching(/process running this export stopped/)]);

    const run = await again.catalog.runContinuousExportNow({ name: "E" });
    expect(run.result, run.details).toBe("Completed");
    const committed = (await again.catalog.showExportedArtifacts({ name: "E" })).artifacts.map((a) => a.path);
    expect(readdirSync(lake).filter((f) => f !== "_spillway").map((f) => `file://${join(lake, f)}`).sort()).toEqual(committed.sort());
    expect(sortBy(await readArtifacts(undefined as never, committed, "csv", { Id: "BIGINT" }), "Id")).toEqual([{ Id: "1" }, { Id: "2" }, { Id: "3" }]);
  });

  it("deletes the files of an attempt that died between upload and commit when the export is dropped", async () => {
    dir = mkdtempSync(join(tmpdir(), "recovery-"));
    const lake = join(dir, "lake");
    const c = await setUp(lake);
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[1]]) });
    await app!.stop();
    const orphan = await leaveCrashedAttempt(c.exportId, lake);

    const again = await open();
    expect(existsSync(orphan)).toBe(true);
    await again.catalog.dropContinuousExport({ name: "E" });
    expect(existsSync(orphan)).toBe(false);
    await expect(again.catalog.showContinuousExport({ name: "E" })).rejects.toMatchObject({ code: 5 });
  });

  /** The state a crash after the upload and before the commit leaves: a Running run, its artifact journaled and in storage, the checkpoint unmoved. */
  async function leaveCrashedAttempt(exportId: string, lake: string): Promise<string> {
    const store = await CursorStore.open(join(dir, "data"), () => clock);
    const state = (await store.getExportStates([exportId]))[0]!;
    await store.beginRun(exportId, "crashed-run", state.checkpointCursor, await store.currentCursor());
    mkdirSync(lake, { recursive: true });
    const orphan = join(lake, "crashed-attempt.csv");
    writeFileSync(orphan, "1\n2\n3\n");
    await store.journalPending(exportId, "crashed-run", [`file://${orphan}`]);
    await store.close();
    return orphan;
  }

  async function setUpDelta(lake: string) {
    const c = await open();
    await c.catalog.createTable({ name: "T", columns: [{ name: "Id", type: "long" }] });
    await c.catalog.createExternalTable({ name: "Lake", kind: "delta", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}`] });
    const created = await c.catalog.createOrAlterContinuousExport({ name: "E", externalTable: "Lake", query: "SELECT Id FROM T", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    return { ...c, exportId: created.export!.id };
  }

  it("Delta: after a crash between the data files and the log entry, the retry commits one version with the rows once", async () => {
    dir = mkdtempSync(join(tmpdir(), "recovery-"));
    const lake = join(dir, "delta");
    const c = await setUpDelta(lake);
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[1], [2]]) });
    await app!.stop();
    const store = await CursorStore.open(join(dir, "data"), () => clock);
    const state = (await store.getExportStates([c.exportId]))[0]!;
    await store.beginRun(c.exportId, "crashed-run", state.checkpointCursor, await store.currentCursor());
    mkdirSync(lake, { recursive: true });
    const orphan = join(lake, "part-00000-crashed.c000.snappy.parquet");
    writeFileSync(orphan, "not yet in any version");
    await store.journalPending(c.exportId, "crashed-run", [`file://${orphan}`]);
    await store.close();

    const again = await open();
    const run = await again.catalog.runContinuousExportNow({ name: "E" });
    expect(run.result, run.details).toBe("Completed");
    const table = await readDeltaTable(openStorageTarget({ kind: "folder", path: lake }));
    expect(table.version).toBe(0);
    expect(table.rows.map((r) => Number(r.Id)).sort()).toEqual([1, 2]);
    expect(existsSync(orphan)).toBe(false);
    expect(readdirSync(lake).filter((f) => f.endsWith(".parquet"))).toEqual(table.files.map((f) => f.path));
  });

  it("Delta: a retried run whose commit already landed records that commit and adds nothing", async () => {
    dir = mkdtempSync(join(tmpdir(), "recovery-"));
    const lake = join(dir, "delta");
    const c = await setUpDelta(lake);
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[1]]) });
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Completed");
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[2], [3]]) });
    await app!.stop();

    // The state a crash leaves after the Delta commit of run 2 and before the cursor's
    // commit: version 1 holds the rows with txn version 2; the checkpoint did not move.
    const store = await CursorStore.open(join(dir, "data"), () => clock);
    const to = (await store.currentCursor()).toString();
    await store.close();
    const instance = await DuckDBInstance.create(":memory:");
    const conn = await instance.connect();
    const dataFile = "part-00000-landed.c000.snappy.parquet";
    await conn.run(`COPY (SELECT * FROM (VALUES (2::BIGINT), (3::BIGINT)) v(Id)) TO '${join(lake, dataFile)}' (FORMAT parquet)`);
    conn.closeSync();
    instance.closeSync();
    const actions = [
      { commitInfo: { timestamp: clock, operation: "WRITE", spillway: { appId: c.exportId, txnVersion: 2, fromCursor: "", toCursor: to } } },
      { txn: { appId: c.exportId, version: 2, lastUpdated: clock } },
      { add: { path: dataFile, partitionValues: {}, size: 10, modificationTime: clock, dataChange: true, stats: JSON.stringify({ numRecords: 2 }) } },
    ];
    writeFileSync(join(lake, "_delta_log/00000000000000000001.json"), actions.map((a) => JSON.stringify(a)).join("\n") + "\n");

    const again = await open();
    const run = await again.catalog.runContinuousExportNow({ name: "E" });
    expect(run.result, run.details).toBe("Completed");
    expect(run.toCursor).toBe(to);
    expect(run.artifacts.map((a) => a.path)).toEqual([`file://${join(lake, dataFile)}`]);
    const table = await readDeltaTable(openStorageTarget({ kind: "folder", path: lake }));
    expect(table.version).toBe(1);
    expect(table.rows.map((r) => Number(r.Id)).sort()).toEqual([1, 2, 3]);
    // Nothing new: the next run writes no version.
    expect((await again.catalog.runContinuousExportNow({ name: "E" })).artifacts).toEqual([]);
    expect((await readDeltaTable(openStorageTarget({ kind: "folder", path: lake }))).version).toBe(1);
  });

  it("disables an export after 7 days of only permanent failures, and resumes from the checkpoint when enabled", async () => {
    dir = mkdtempSync(join(tmpdir(), "recovery-"));
    const lake = join(dir, "lake");
    const c = await setUp(lake);
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[1]]) });
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Completed");
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[2]]) });
    await c.catalog.dropExternalTable({ name: "Lake" });

    const first = await c.catalog.runContinuousExportNow({ name: "E" });
    expect(first).toMatchObject({ result: "Failed", details: expect.stringMatching(/no longer exists/) });
    clock += 6 * DAY;
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Failed");
    expect((await c.catalog.showContinuousExport({ name: "E" })).export!.isDisabled).toBe(false);
    clock += DAY + 1000;
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Failed");
    expect((await c.catalog.showContinuousExport({ name: "E" })).export!.isDisabled).toBe(true);
    const { failures } = await c.catalog.showFailures({ name: "E" });
    expect(failures.at(-1)!.details).toMatch(/disabled automatically: only permanent failures since/);
    expect(failures.every((f) => f.isPermanent)).toBe(true);

    await c.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}`] });
    await c.catalog.enableContinuousExport({ name: "E" });
    const resumed = await c.catalog.runContinuousExportNow({ name: "E" });
    expect(resumed.result, resumed.details).toBe("Completed");
    const all = (await c.catalog.showExportedArtifacts({ name: "E" })).artifacts.map((a) => a.path);
    expect(sortBy(await readArtifacts(undefined as never, all, "csv", { Id: "BIGINT" }), "Id")).toEqual([{ Id: "1" }, { Id: "2" }]);
  });

  it("does not disable an export whose failures are transient, however long they last", async () => {
    dir = mkdtempSync(join(tmpdir(), "recovery-"));
    // A folder that cannot be created: a file stands where the folder should be.
    const blocker = join(dir, "blocked");
    const c = await setUp(join(blocker, "lake"));
    writeFileSync(blocker, "not a folder");
    await c.query.ingest({ table: "T", format: "csv", payload: csv([[1]]) });
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Failed");
    clock += 8 * DAY;
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Failed");
    expect((await c.catalog.showContinuousExport({ name: "E" })).export!.isDisabled).toBe(false);
    rmSync(blocker);
    expect((await c.catalog.runContinuousExportNow({ name: "E" })).result).toBe("Completed");
  });
});
