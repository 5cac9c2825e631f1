import { ErrorCode } from "@spillway/errors";
import { mkdtemp, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { DuckDBInstance } from "@duckdb/node-api";
import { ExternalTableSchema } from "@spillway/proto";
import { LocalSpoolStore, openStorageTarget, ROWS_SPOOL_FILE } from "@spillway/storage";
import { readDeltaTable } from "../../../test/support/delta-reader.js";
import { ArtifactWriter } from "./artifact-writer.js";
import { deltaSchemaString } from "./delta-schema.js";

let dataDir: string;
let lake: string;
let writer: ArtifactWriter;
let other: ArtifactWriter;
let stages = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "delta-"));
  lake = await mkdtemp(join(tmpdir(), "delta-lake-"));
  const fileTargets = { roots: [lake], dataDir };
  writer = await ArtifactWriter.create(dataDir, fileTargets);
  other = await ArtifactWriter.create(dataDir, fileTargets);
  const instance = await DuckDBInstance.create(":memory:");
  const c = await instance.connect();
  await c.run(`COPY (SELECT range AS N, 'k' || (range % 3) AS Key, TIMESTAMP '2026-01-01' + to_hours(range) AS Ts FROM range(30)) TO '${join(await new LocalSpoolStore(join(dataDir, "spool")).create("rows"), ROWS_SPOOL_FILE)}' (FORMAT parquet)`);
  c.closeSync();
  instance.closeSync();
});
afterAll(async () => {
  writer.close();
  other.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(lake, { recursive: true, force: true });
});

const COLUMNS = [
  { name: "N", type: "long" },
  { name: "Key", type: "string" },
  { name: "Ts", type: "datetime" },
];

function deltaTable(folder: string, extra: Partial<MessageInitShape<typeof ExternalTableSchema>> = {}) {
  return create(ExternalTableSchema, { name: "D", kind: "delta", dataFormat: "parquet", columns: COLUMNS, connectionStrings: [`file://${folder}`], ...(extra as object) });
}

async function runOnce(w: ArtifactWriter, table: ReturnType<typeof deltaTable>, appId: string, txn: bigint) {
  const stageId = `d${++stages}`;
  const staged = await w.stage({ stageId, externalTable: table, spoolHandle: "rows", encodedFiles: [], spoolRows: 0n, nameStem: "x", rowGroupSize: 0, sizeLimit: 0n, spreadKey: 0, deltaAppId: appId, deltaTxnVersion: txn, fromCursor: "1", toCursor: String(100 + Number(txn)) });
  if (staged.alreadyCommitted) return { staged, uploaded: staged.artifacts };
  return { staged, uploaded: await w.upload(stageId) };
}

/** An attempt's stage of txn `txn`, not uploaded (as one paused before its upload leaves it). */
async function stageAttempt(table: ReturnType<typeof deltaTable>, appId: string, txn: bigint, range = { from: "", to: "" }) {
  const stageId = `d${++stages}`;
  const staged = await writer.stage({ stageId, externalTable: table, spoolHandle: "rows", encodedFiles: [], spoolRows: 0n, nameStem: "x", rowGroupSize: 0, sizeLimit: 0n, spreadKey: 0, deltaAppId: appId, deltaTxnVersion: txn, fromCursor: range.from, toCursor: range.to });
  return { stageId, staged };
}

describe("Delta commits", () => {
  it("creates the table with protocol, metaData and commitInfo, then appends a version per run", async () => {
    const folder = join(lake, "t1");
    const table = deltaTable(folder);
    await runOnce(writer, table, "export-a", 1n);
    await runOnce(writer, table, "export-a", 2n);
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.version).toBe(1);
    expect(read.protocol).toEqual({ minReaderVersion: 1, minWriterVersion: 2 });
    expect(read.metaData!.schemaString).toBe(deltaSchemaString(COLUMNS));
    expect(read.txns).toEqual({ "export-a": 2 });
    expect(read.rows.length).toBe(60);
    const stats = JSON.parse(read.files[0]!.stats);
    expect(stats).toEqual({
      numRecords: 30,
      minValues: { N: 0, Key: "k0", Ts: "2026-01-01T00:00:00.000Z" },
      maxValues: { N: 29, Key: "k2", Ts: "2026-01-02T05:00:00.000Z" },
      nullCount: { N: 0, Key: 0, Ts: 0 },
    });
  });

  it("commits nothing twice: a retry whose txn version is in the log reports that commit", async () => {
    const folder = join(lake, "t2");
    const table = deltaTable(folder);
    const first = await runOnce(writer, table, "export-b", 1n);
    const again = await runOnce(writer, table, "export-b", 1n);
    expect(again.staged.alreadyCommitted).toBe(true);
    expect(again.staged.committedToCursor).toBe("101");
    expect(again.uploaded.map((a) => a.path)).toEqual(first.uploaded.map((a) => a.path));
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.version).toBe(0);
    expect(read.rows.length).toBe(30);
  });

  it("finds a txn's commit in the log (its files and range), and says when there is none", async () => {
    const folder = join(lake, "t-find");
    const table = deltaTable(folder);
    const first = await runOnce(writer, table, "op-1", 1n);
    await expect(writer.findDeltaCommit(table, "op-1", 1n)).resolves.toEqual({ committed: true, artifacts: first.uploaded, toCursor: "101" });
    await expect(writer.findDeltaCommit(table, "op-1", 2n)).resolves.toEqual({ committed: false, artifacts: [], toCursor: "" });
    await expect(writer.findDeltaCommit(table, "op-2", 1n)).resolves.toEqual({ committed: false, artifacts: [], toCursor: "" });
    await expect(writer.findDeltaCommit({ ...table, kind: "blob" }, "op-1", 1n)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
  });

  it("finds a txn's files and range after a checkpoint folded its version, from that version's own file", async () => {
    const folder = join(lake, "t-folded");
    const table = deltaTable(folder);
    const first = await runOnce(writer, table, "op-old", 1n);
    for (let i = 1n; i <= 10n; i++) await runOnce(writer, table, "export-busy", i);
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.checkpointVersion).toBe(10);
    await expect(writer.findDeltaCommit(table, "op-old", 1n)).resolves.toEqual({ committed: true, artifacts: first.uploaded, toCursor: "101" });
    // A retry's stage reports the same.
    const again = await runOnce(writer, table, "op-old", 1n);
    expect(again.staged).toMatchObject({ alreadyCommitted: true, committedToCursor: "101", artifacts: first.uploaded });
  });

  it("looks for a txn among the versions a checkpoint folded only back to the app's first commit below it", async () => {
    const folder = join(lake, "t-stop");
    const table = deltaTable(folder);
    await runOnce(writer, table, "app-s", 1n);
    await runOnce(writer, table, "app-s", 2n);
    for (let i = 1n; i <= 9n; i++) await runOnce(writer, table, "busy", i);
    await writer.findDeltaCommit(table, "app-s", 6n, { fence: true });
    // Version 0 unreadable: reading it would fail the search.
    await writeFile(join(folder, "_delta_log", "00000000000000000000.json"), "{ not json");
    await expect(writer.findDeltaCommit(table, "app-s", 5n, { sinceVersion: 3n })).resolves.toEqual({ committed: false, artifacts: [], toCursor: "" });
  });

  it("fences a txn no commit holds: an upload staged before the fence cannot commit it, and its files are removed", async () => {
    const folder = join(lake, "t-fence");
    const table = deltaTable(folder);
    await runOnce(writer, table, "export-f", 1n);
    const { stageId, staged } = await stageAttempt(table, "op-late", 1n);
    await expect(writer.findDeltaCommit(table, "op-late", 1n, { fence: true })).resolves.toEqual({ committed: false, artifacts: [], toCursor: "" });
    // Asked again, the fence is still no commit of files.
    await expect(writer.findDeltaCommit(table, "op-late", 1n, { fence: true })).resolves.toMatchObject({ committed: false });
    await expect(writer.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted, message: expect.stringContaining("fenced") });
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.rows.length).toBe(30);
    expect(read.txns).toEqual({ "export-f": 1, "op-late": 1 });
    for (const a of staged.artifacts) await expect(stat(fileURLToPath(a.path))).rejects.toMatchObject({ code: "ENOENT" });
    // A new stage of the fenced txn is refused.
    await expect(runOnce(writer, table, "op-late", 1n)).rejects.toMatchObject({ code: ErrorCode.aborted });
  });

  it("holds a txn no commit has for a cursor range: a late attempt's upload of it is refused and its files removed, and asked again the range is the txn's commit", async () => {
    const folder = join(lake, "t-hold");
    const table = deltaTable(folder);
    await runOnce(writer, table, "export-h", 1n);
    const { stageId, staged: late } = await stageAttempt(table, "export-h", 2n, { from: "101", to: "300" });
    const hold = { fromCursor: "101", toCursor: "200" };
    await expect(writer.findDeltaCommit(table, "export-h", 2n, { hold })).resolves.toEqual({ committed: true, artifacts: [], toCursor: "200" });
    await expect(writer.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted, message: expect.stringContaining("committed by another attempt") });
    for (const a of late.artifacts) await expect(stat(fileURLToPath(a.path))).rejects.toMatchObject({ code: "ENOENT" });
    // A retry of the run finds the range, and writes nothing more; so does its stage.
    await expect(writer.findDeltaCommit(table, "export-h", 2n, { hold: { fromCursor: "101", toCursor: "250" } })).resolves.toEqual({ committed: true, artifacts: [], toCursor: "200" });
    await expect(runOnce(writer, table, "export-h", 2n)).resolves.toMatchObject({ staged: { alreadyCommitted: true, artifacts: [], committedToCursor: "200" } });
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.version).toBe(1);
    expect(read.rows.length).toBe(30);
    expect(read.txns).toEqual({ "export-h": 2 });
  });

  it("removes an attempt's files but the log's, and says which it kept", async () => {
    const folder = join(lake, "t-kept");
    const table = deltaTable(folder);
    const committed = await runOnce(writer, table, "export-k", 1n);
    const { staged } = await stageAttempt(table, "export-k", 2n);
    // Uploaded, not committed: as an attempt that stopped before its log commit leaves them.
    const target = openStorageTarget({ kind: "folder", path: folder });
    for (const a of staged.artifacts) await target.putOverwrite(a.path.split("/").pop()!, Buffer.from("x"));
    const paths = [...committed.uploaded, ...staged.artifacts].map((a) => a.path);
    await expect(writer.delete(table, paths)).resolves.toEqual({ kept: committed.uploaded.map((a) => a.path) });
    for (const a of staged.artifacts) await expect(stat(fileURLToPath(a.path))).rejects.toMatchObject({ code: "ENOENT" });
    for (const a of committed.uploaded) await expect(stat(fileURLToPath(a.path))).resolves.toBeTruthy();
  });

  it("an upload whose txn another attempt committed meanwhile reports it and removes its own files", async () => {
    const folder = join(lake, "t-race");
    const table = deltaTable(folder);
    const stage = (stageId: string) => writer.stage({ stageId, externalTable: table, spoolHandle: "rows", encodedFiles: [], spoolRows: 0n, nameStem: "x", rowGroupSize: 0, sizeLimit: 0n, spreadKey: 0, deltaAppId: "op-race", deltaTxnVersion: 1n, fromCursor: "1", toCursor: "2" });
    const [a, b] = [`d${++stages}`, `d${++stages}`];
    const first = await stage(a);
    const second = await stage(b);
    await writer.upload(a);
    await expect(writer.upload(b)).rejects.toMatchObject({ code: ErrorCode.aborted, message: expect.stringContaining("committed by another attempt") });
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.rows.length).toBe(30);
    for (const f of first.artifacts) await expect(stat(fileURLToPath(f.path))).resolves.toBeDefined();
    for (const f of second.artifacts) await expect(stat(fileURLToPath(f.path))).rejects.toMatchObject({ code: "ENOENT" });
  });

  describe("a backfill batch's txn versions, one per claim of its operation (n × 2^24 + claim)", () => {
    const BAND = 1n << 24n;
    const stageBatch = (table: ReturnType<typeof deltaTable>, batch: bigint, claim: bigint) => {
      const stageId = `d${++stages}`;
      const staged = writer.stage({ stageId, externalTable: table, spoolHandle: "rows", encodedFiles: [], spoolRows: 0n, nameStem: "x", rowGroupSize: 0, sizeLimit: 0n, spreadKey: 0, deltaAppId: "bf", deltaTxnVersion: batch * BAND + claim, deltaTxnSince: batch * BAND, fromCursor: "0", toCursor: String(batch * 10n) });
      return { stageId, staged };
    };
    const fence = (table: ReturnType<typeof deltaTable>, batch: bigint, claim: bigint) => writer.findDeltaCommit(table, "bf", batch * BAND + claim, { fence: true, sinceVersion: batch * BAND });

    it("a claim taking over fences the earlier claims' versions: a paused claim's upload cannot commit after its files were removed, and the batch commits once, under the new claim's", async () => {
      const folder = join(lake, "t-band-fenced");
      const table = deltaTable(folder);
      // Claim 1 staged batch 1, then paused before its upload; claim 3 takes over (claim 2 never got this far).
      const paused = stageBatch(table, 1n, 1n);
      const pausedStaged = await paused.staged;
      await expect(fence(table, 1n, 2n)).resolves.toEqual({ committed: false, artifacts: [], toCursor: "" });
      // Claim 3's own batch is not fenced by it.
      const own = stageBatch(table, 1n, 3n);
      expect((await own.staged).alreadyCommitted).toBe(false);
      // Claim 1 resumes: its commit is refused (a later version holds the batch's txn) and its files go.
      await expect(writer.upload(paused.stageId)).rejects.toMatchObject({ code: ErrorCode.aborted, message: expect.stringContaining("fenced") });
      for (const a of pausedStaged.artifacts) await expect(stat(fileURLToPath(a.path))).rejects.toMatchObject({ code: "ENOENT" });
      const ownFiles = await writer.upload(own.stageId);
      // A later claim finds the batch committed, with claim 3's files; a stale claim 2 could not commit it again.
      await expect(fence(table, 1n, 4n)).resolves.toEqual({ committed: true, artifacts: ownFiles, toCursor: "10" });
      await expect(stageBatch(table, 1n, 4n).staged).resolves.toMatchObject({ alreadyCommitted: true, artifacts: ownFiles });
      await expect(stageBatch(table, 1n, 2n).staged).rejects.toMatchObject({ code: ErrorCode.aborted });
      // The next batch is not held by any of it.
      const next = stageBatch(table, 2n, 4n);
      expect((await next.staged).alreadyCommitted).toBe(false);
      await writer.upload(next.stageId);
      const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
      expect(read.rows.length).toBe(60);
      expect(read.txns).toEqual({ bf: Number(2n * BAND + 4n) });
      expect(read.files.map((f) => f.path).sort()).toEqual([...ownFiles, ...(await next.staged).artifacts].map((a) => a.path.split("/").pop()).sort());
    });

    it("a commit that landed before the takeover's fence is the batch's: reported to the fence and to the new claim's stage, not committed again", async () => {
      const folder = join(lake, "t-band-landed");
      const table = deltaTable(folder);
      const first = stageBatch(table, 1n, 1n);
      await first.staged;
      const landed = await writer.upload(first.stageId);
      await expect(fence(table, 1n, 1n)).resolves.toEqual({ committed: true, artifacts: landed, toCursor: "10" });
      await expect(stageBatch(table, 1n, 2n).staged).resolves.toMatchObject({ alreadyCommitted: true, artifacts: landed, committedToCursor: "10" });
      const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
      expect(read.rows.length).toBe(30);
      expect(read.txns).toEqual({ bf: Number(BAND + 1n) });
    });

    it("a claim's commit of the batch refuses an earlier claim's, fence or none: that one's files are removed", async () => {
      const folder = join(lake, "t-band-later");
      const table = deltaTable(folder);
      const earlier = stageBatch(table, 1n, 1n);
      const earlierStaged = await earlier.staged;
      const later = stageBatch(table, 1n, 2n);
      await later.staged;
      const committed = await writer.upload(later.stageId);
      await expect(writer.upload(earlier.stageId)).rejects.toMatchObject({ code: ErrorCode.aborted });
      for (const a of earlierStaged.artifacts) await expect(stat(fileURLToPath(a.path))).rejects.toMatchObject({ code: "ENOENT" });
      await expect(writer.findDeltaCommit(table, "bf", BAND + 1n, { sinceVersion: BAND })).resolves.toMatchObject({ committed: false });
      await expect(writer.findDeltaCommit(table, "bf", BAND + 3n, { sinceVersion: BAND })).resolves.toEqual({ committed: true, artifacts: committed, toCursor: "10" });
      const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
      expect(read.rows.length).toBe(30);
    });

    it("refuses a first version above the txn's", async () => {
      const table = deltaTable(join(lake, "t-band-bad"));
      await expect(writer.findDeltaCommit(table, "bf", 5n, { sinceVersion: 6n })).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
      await expect(writer.stage({ stageId: `d${++stages}`, externalTable: table, spoolHandle: "rows", encodedFiles: [], spoolRows: 0n, nameStem: "x", rowGroupSize: 0, sizeLimit: 0n, spreadKey: 0, deltaAppId: "bf", deltaTxnVersion: 5n, deltaTxnSince: 6n })).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
    });
  });

  it("lands both of two writers committing at once, as consecutive versions", async () => {
    const folder = join(lake, "t3");
    const table = deltaTable(folder);
    await runOnce(writer, table, "seed", 1n);
    await Promise.all([runOnce(writer, table, "export-c", 1n), runOnce(other, table, "export-d", 1n)]);
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.version).toBe(2);
    expect(read.txns).toEqual({ seed: 1, "export-c": 1, "export-d": 1 });
    expect(read.rows.length).toBe(90);
  });

  it("writes a Parquet checkpoint and _last_checkpoint every 10 versions; readers start from it", async () => {
    const folder = join(lake, "t4");
    const table = deltaTable(folder);
    for (let i = 1n; i <= 12n; i++) await runOnce(writer, table, "export-e", i);
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.checkpointVersion).toBe(10);
    expect(read.version).toBe(11);
    expect(read.txns).toEqual({ "export-e": 12 });
    expect(read.rows.length).toBe(12 * 30);
  });

  it("partitions by string and datetime values into Hive-style folders", async () => {
    const folder = join(lake, "t5");
    const table = deltaTable(folder, {
      partitions: [
        { name: "Day", type: "datetime", function: "startofday", column: "Ts" },
        { name: "K", type: "string", column: "Key" },
      ],
    });
    await runOnce(writer, table, "export-f", 1n);
    const read = await readDeltaTable(openStorageTarget({ kind: "folder", path: folder }));
    expect(read.metaData!.partitionColumns).toEqual(["Day", "K"]);
    // Folder names are URL-escaped (as Spark's are), and add.path is a URI of the name: escaped again.
    expect(read.files.map((f) => f.path).sort()[0]).toMatch(/^Day=2026-01-01%252000%253A00%253A00\.000000\/K=k0\/part-/);
    expect(read.files.map((f) => f.partitionValues).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))[0]).toEqual({ Day: "2026-01-01 00:00:00.000000", K: "k0" });
    expect(read.rows.length).toBe(30);
    expect(read.rows.filter((r) => r.K === "k1").every((r) => Number(r.N) % 3 === 1)).toBe(true);
  });

  it("refuses tables of a higher writer version and tables whose schema changed", async () => {
    const v3 = join(lake, "t6");
    await mkdir(join(v3, "_delta_log"), { recursive: true });
    await writeFile(join(v3, "_delta_log/00000000000000000000.json"), JSON.stringify({ protocol: { minReaderVersion: 1, minWriterVersion: 3 } }) + "\n");
    await expect(runOnce(writer, deltaTable(v3), "x", 1n)).rejects.toMatchObject({ code: 9, message: expect.stringMatching(/needs writer version 3/) });
    const folder = join(lake, "t7");
    await runOnce(writer, deltaTable(folder), "x", 1n);
    await expect(runOnce(writer, deltaTable(folder, { columns: COLUMNS.slice(0, 2) }), "x", 2n)).rejects.toMatchObject({ code: 9, message: expect.stringMatching(/schema no longer matches/) });
  });
});

describe("deltaSchemaString", () => {
  it("maps every Kusto type to Delta's schema JSON", () => {
    const all = ["bool", "int", "long", "real", "decimal", "string", "datetime", "timespan", "guid", "dynamic"].map((t) => ({ name: `c_${t}`, type: t }));
    expect(JSON.parse(deltaSchemaString(all))).toEqual({
      type: "struct",
      fields: [
        ["c_bool", "boolean"],
        ["c_int", "integer"],
        ["c_long", "long"],
        ["c_real", "double"],
        ["c_decimal", "decimal(38,18)"],
        ["c_string", "string"],
        ["c_datetime", "timestamp"],
        ["c_timespan", "long"],
        ["c_guid", "string"],
        ["c_dynamic", "string"],
      ].map(([name, type]) => ({ name, type, nullable: true, metadata: {} })),
    });
  });
});
