import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { DuckDBInstance } from "@duckdb/node-api";
import { ErrorCode } from "@spillway/errors";
import { ExternalTableSchema } from "@spillway/proto";
import { encodeArtifacts } from "@spillway/duck";
import { LocalSpoolStore, plannedArtifactPaths, ROWS_SPOOL_FILE, spreadKeyOf } from "@spillway/storage";
import { ArtifactWriter } from "./artifact-writer.js";

// Stage and upload through real DuckDB into real folders: partition folders written
// by hand from Kusto's rules (SPEC §5), size limits, several connection strings, and
// file targets only where the policy allows (SPEC §7).

let dataDir: string;
let lake: string;
let writer: ArtifactWriter;
let stages = 0;
let spools: LocalSpoolStore;

// 2024-03-05 is a Tuesday: its week (Sunday start) began 2024-03-03.
const ROWS = `SELECT * FROM (VALUES
  (TIMESTAMP '2024-03-05 07:08:09', 'World', 1::BIGINT, 'eu'),
  (TIMESTAMP '2024-03-05 07:59:59', 'a/b', 2::BIGINT, 'us'),
  (TIMESTAMP '2023-12-31 23:59:59', '', 3::BIGINT, ''),
  (TIMESTAMP '2024-01-01 00:00:00', '..', 4::BIGINT, NULL),
  (NULL, NULL, 5::BIGINT, 'eu')
) AS v(Ts, Key, N, Region)`;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "writer-"));
  lake = await mkdtemp(join(tmpdir(), "writer-lake-"));
  writer = await ArtifactWriter.create(dataDir, { roots: [lake], dataDir });
  spools = new LocalSpoolStore(join(dataDir, "spool"));
  const instance = await DuckDBInstance.create(":memory:");
  const c = await instance.connect();
  await c.run(`COPY (${ROWS}) TO '${join(await spools.create("rows"), ROWS_SPOOL_FILE)}' (FORMAT parquet)`);
  await c.run(`COPY (SELECT range AS N, repeat('x', 100) AS Key FROM range(20000)) TO '${join(await spools.create("many"), ROWS_SPOOL_FILE)}' (FORMAT parquet)`);
  c.closeSync();
  instance.closeSync();
});

afterAll(async () => {
  writer.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(lake, { recursive: true, force: true });
});

type TableInit = MessageInitShape<typeof ExternalTableSchema>;

/**
 * Stages `spool` on `w` for a new table under the lake (CSV to one target unless `table` says
 * otherwise), in files of about `sizeLimit` bytes (0: one file).
 */
async function stageNew(table: TableInit, spool = "rows", sizeLimit = 0n, w = writer) {
  const stageId = `s${++stages}`;
  const t = create(ExternalTableSchema, { name: "Ext", dataFormat: "csv", connectionStrings: [`file://${lake}/${stageId}`], ...table });
  return { stageId, staged: await w.stage({ stageId, externalTable: t, spoolHandle: spool, encodedFiles: [], spoolRows: 0n, nameStem: "run", rowGroupSize: 0, sizeLimit, spreadKey: 0 }) };
}

/** The columns of the "many" spool. */
const MANY: TableInit = { columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }] };

async function write(table: TableInit, spool = "rows", sizeLimit = 0n) {
  const { stageId, staged } = await stageNew(table, spool, sizeLimit);
  const uploaded = await writer.upload(stageId);
  expect(uploaded).toEqual(staged.artifacts);
  const folderOf = (path: string) => path.slice(`file://${lake}/${stageId}/`.length).replace(/\/?[^/]*$/, "");
  return { artifacts: uploaded, folders: uploaded.map((a) => folderOf(a.path)).sort(), stageId };
}

const cols = [
  { name: "Ts", type: "datetime" },
  { name: "Key", type: "string" },
  { name: "N", type: "long" },
];

describe("partition folders follow Kusto's rules", () => {
  it("startofday and hash(Key, 100) joined by '/' without a path format; nulls to the default partition", async () => {
    const { folders } = await write({
      columns: cols,
      partitions: [
        { name: "Day", type: "datetime", function: "startofday", column: "Ts" },
        { name: "Shard", type: "long", function: "hash", column: "Key", modulo: 100n },
      ],
    });
    // hash("World", 100) = 51 (Kusto's own example); the others computed with xxhash64 seed 0.
    expect(folders).toEqual(
      [
        "2024/03/05/51",
        `2024/03/05/${hashMod("a/b", 100n)}`,
        `2023/12/31/${hashMod("", 100n)}`,
        `2024/01/01/${hashMod("..", 100n)}`,
        "__DEFAULT_PARTITION__/__DEFAULT_PARTITION__",
      ].sort(),
    );
  });

  it("startofweek (Sunday), 1h and 1m bins with datetime_pattern and default renderings", async () => {
    const { folders } = await write({
      columns: cols,
      partitions: [
        { name: "Week", type: "datetime", function: "startofweek", column: "Ts" },
        { name: "Hour", type: "datetime", function: "bin", column: "Ts", binSize: { seconds: 3600n } },
        { name: "Min", type: "datetime", function: "bin", column: "Ts", binSize: { seconds: 60n } },
      ],
      pathFormat: `"week=" datetime_pattern("yyyyMMdd", Week) "/h=" Hour "/m=" Min`,
    });
    expect(folders).toEqual(
      [
        "week=20240303/h=2024/03/05/07/m=2024/03/05/07/08",
        "week=20240303/h=2024/03/05/07/m=2024/03/05/07/59",
        "week=20231231/h=2023/12/31/23/m=2023/12/31/23/59",
        "week=20231231/h=2024/01/01/00/m=2024/01/01/00/00",
        "week=__DEFAULT_PARTITION__/h=__DEFAULT_PARTITION__/m=__DEFAULT_PARTITION__",
      ].sort(),
    );
  });

  it("string values and virtual columns, invalid directory names to the default partition; braces in datetime_pattern", async () => {
    const { folders, artifacts } = await write({
      columns: cols,
      partitions: [
        { name: "Month", type: "datetime", function: "startofmonth", column: "Ts" },
        { name: "Cust", type: "string", column: "Key" },
        { name: "Region", type: "string" },
      ],
      pathFormat: `datetime_pattern("year={yyyy}/month={MM}", Month) "/cust=" Cust "/region=" Region`,
    });
    expect(folders).toEqual(
      [
        "year=2024/month=03/cust=World/region=eu",
        "year=2024/month=03/cust=__DEFAULT_PARTITION__/region=us",
        "year=2023/month=12/cust=__DEFAULT_PARTITION__/region=__DEFAULT_PARTITION__",
        "year=2024/month=01/cust=__DEFAULT_PARTITION__/region=__DEFAULT_PARTITION__",
        // A datetime_pattern renders one directory value: all of it gives way to the default partition.
        "__DEFAULT_PARTITION__/cust=__DEFAULT_PARTITION__/region=eu",
      ].sort(),
    );
    // The virtual column is in the path, not in the file.
    const first = artifacts.find((a) => a.path.includes("cust=World"))!;
    expect(await readFile(fileURLToPath(first.path), "utf8")).toBe("2024-03-05T07:08:09.0000000Z,World,1\n");
  });

  it("startofyear and a 1d bin render as yyyy and yyyy/MM/dd", async () => {
    const { folders } = await write({
      columns: cols,
      partitions: [
        { name: "Year", type: "datetime", function: "startofyear", column: "Ts" },
        { name: "Day", type: "datetime", function: "bin", column: "Ts", binSize: { seconds: 86400n } },
      ],
    });
    expect(folders).toEqual(["2024/2024/03/05", "2023/2023/12/31", "2024/2024/01/01", "__DEFAULT_PARTITION__/__DEFAULT_PARTITION__"].sort());
  });
});

describe("a spool the query service encoded in one pass", () => {
  it("finishes and uploads its files as they are (gzip, first-file header), leaving out a last file without rows", async () => {
    const columns = [{ name: "N", type: "long" }, { name: "Key", type: "string" }];
    const properties = { includeHeaders: "firstFile", compressed: true };
    const folder = await spools.create("encoded");
    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    const encoded = await encodeArtifacts(c, { columns, dataFormat: "csv", properties }, "(SELECT range AS N, 'k' || range AS Key FROM range(10000)) AS s", join(folder, "encoded"), { sizeLimit: 20_000, rowGroupSize: 0 });
    c.closeSync();
    instance.closeSync();
    const files = encoded.files.map((f) => f.slice(folder.length + 1));
    // DuckDB sometimes opens one more file after the size limit and finds no row left for it.
    await writeFile(join(folder, "encoded/data_99.csv"), "N,Key\n");
    files.push("encoded/data_99.csv");

    const stageId = `s${++stages}`;
    const t = create(ExternalTableSchema, { name: "Ext", dataFormat: "csv", columns, properties, connectionStrings: [`file://${lake}/${stageId}`] });
    const staged = await writer.stage({ stageId, externalTable: t, spoolHandle: "encoded", encodedFiles: files, spoolRows: 10_000n, nameStem: "run", rowGroupSize: 0, sizeLimit: 20_000n, spreadKey: 0 });
    const artifacts = await writer.upload(stageId);
    expect(artifacts).toEqual(staged.artifacts);
    expect(artifacts.length).toBe(files.length - 1);
    const { gunzipSync } = await import("node:zlib");
    const texts = await Promise.all(artifacts.map(async (a) => gunzipSync(await readFile(fileURLToPath(a.path))).toString("utf8")));
    expect(texts[0]!.startsWith("N,Key\n0,k0\n")).toBe(true);
    expect(texts.slice(1).every((text) => !text.startsWith("N,Key"))).toBe(true);
    const lines = texts.flatMap((text) => text.trimEnd().split("\n")).slice(1);
    expect(lines).toEqual(Array.from({ length: 10_000 }, (_, i) => `${i},k${i}`));
    expect(artifacts.map((a) => a.numRecords)).toEqual(texts.map((text, i) => BigInt(text.trimEnd().split("\n").length - (i === 0 ? 1 : 0))));
    // The spool is the query service's: still whole after staging (a retried stage reads it again).
    expect((await readdir(join(folder, "encoded"))).length).toBe(files.length);
  });
});

describe("the names of a stage encoded in one pass", () => {
  it("are those the scheduler journals beside the staging (plannedArtifactPaths): each file numbered, spread over the connection strings", async () => {
    const columns = [{ name: "N", type: "long" }];
    const properties = { namePrefix: "p-", compressed: true };
    const folder = await spools.create("encoded-spread");
    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    const encoded = await encodeArtifacts(c, { columns, dataFormat: "tsv" }, "(SELECT range AS N FROM range(20000)) AS s", join(folder, "encoded"), { sizeLimit: 20_000, rowGroupSize: 0 });
    c.closeSync();
    instance.closeSync();
    const files = encoded.files.map((f) => f.slice(folder.length + 1));
    expect(files.length).toBeGreaterThanOrEqual(3);
    // A last file without rows is left out: the stage keeps fewer names than planned, never others.
    await writeFile(join(folder, "encoded/data_99.tsv"), "");
    files.push("encoded/data_99.tsv");

    const stageId = `s${++stages}`;
    const connectionStrings = ["a", "b", "c"].map((f) => `file://${lake}/${stageId}/${f}`);
    const t = create(ExternalTableSchema, { name: "Ext", dataFormat: "tsv", columns, properties, connectionStrings });
    const nameStem = "0a1b2c3d_7_9f8e7d6c";
    const staged = await writer.stage({ stageId, externalTable: t, spoolHandle: "encoded-spread", encodedFiles: files, spoolRows: 20_000n, nameStem, rowGroupSize: 0, sizeLimit: 20_000n, spreadKey: spreadKeyOf(nameStem) });
    const planned = plannedArtifactPaths(t, nameStem, files.length)!;
    expect(staged.artifacts.length).toBeGreaterThanOrEqual(3);
    expect(staged.artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(20_000n);
    expect(staged.artifacts.map((a) => a.path)).toEqual(planned.slice(0, staged.artifacts.length));
    expect(new Set(planned.slice(0, 3).map((p) => p.split("/").at(-2))).size).toBe(3);
    expect(planned[0]).toBe(`file://${lake}/${stageId}/${connectionStrings[spreadKeyOf(nameStem) % 3]!.split("/").at(-1)}/p-${nameStem}_0.tsv.gz`);
    await writer.discard(stageId);
  });
});

describe("size and spread of artifacts", () => {
  it("starts a new artifact when sizeLimit is reached, and counts each one's records", async () => {
    const { artifacts } = await write({ columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }] }, "many", 200_000n);
    // DuckDB starts a new file once the limit is passed, checking every 2,048-row chunk:
    // here each chunk (~216 KB) passes 200 KB, so 20,000 rows make 10 artifacts.
    expect(artifacts.length).toBe(10);
    for (const a of artifacts.slice(0, -1)) expect(Number(a.sizeInBytes)).toBeGreaterThanOrEqual(200_000);
    expect(artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(20000n);
    for (const a of artifacts) {
      const lines = (await readFile(fileURLToPath(a.path), "utf8")).trimEnd().split("\n");
      expect(BigInt(lines.length)).toBe(a.numRecords);
      expect(Number(a.sizeInBytes)).toBeLessThan(200_000 + 112 * 2048);
    }
  });

  it("splits Parquet too, counting each artifact's records from its footer", async () => {
    const stageId = `s${++stages}`;
    const t = create(ExternalTableSchema, { name: "Ext", dataFormat: "parquet", columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }], connectionStrings: [`file://${lake}/${stageId}`] });
    // Small row groups: DuckDB checks a Parquet file's size between row groups.
    await writer.stage({ stageId, externalTable: t, spoolHandle: "many", encodedFiles: [], spoolRows: 0n, nameStem: "run", rowGroupSize: 2048, sizeLimit: 1_000n, spreadKey: 0 });
    const artifacts = await writer.upload(stageId);
    expect(artifacts.length).toBeGreaterThan(1);
    const instance = await DuckDBInstance.create(":memory:");
    const c = await instance.connect();
    for (const a of artifacts) {
      const n = (await c.runAndReadAll(`SELECT count(*) FROM read_parquet('${fileURLToPath(a.path)}')`)).getRows()[0]![0];
      expect(BigInt(String(n))).toBe(a.numRecords);
    }
    c.closeSync();
    instance.closeSync();
    expect(artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(20000n);
  });

  it("reports the upload that failed, not the ones it cancelled, once none is in flight", async () => {
    const { stageId, staged } = await stageNew(MANY, "many", 200_000n);
    // A folder where the fourth artifact must go: that upload cannot succeed.
    const { mkdir } = await import("node:fs/promises");
    await mkdir(fileURLToPath(staged.artifacts[3]!.path), { recursive: true });
    const error = await writer.upload(stageId).then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(/storage write failed/);
    expect(error?.message).not.toMatch(/cancel/);
  });

  it("writes the header only in the first file of a folder with includeHeaders firstFile", async () => {
    const { artifacts } = await write(
      { columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }], properties: { includeHeaders: "firstFile", compressed: true } },
      "many",
      200_000n,
    );
    expect(artifacts.length).toBe(10);
    const { gunzipSync } = await import("node:zlib");
    const texts = await Promise.all(artifacts.map(async (a) => gunzipSync(await readFile(fileURLToPath(a.path))).toString("utf8")));
    expect(texts.map((t) => t.startsWith("N,Key\n"))).toEqual([true, ...Array(9).fill(false)]);
    expect(texts.map((t, i) => BigInt(t.trimEnd().split("\n").length - (i === 0 ? 1 : 0)))).toEqual(artifacts.map((a) => a.numRecords));
  });

  it("spreads artifacts evenly over several connection strings", async () => {
    const stageId = `s${++stages}`;
    const t = create(ExternalTableSchema, {
      name: "Ext",
      dataFormat: "csv",
      columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }],
      connectionStrings: [`file://${lake}/${stageId}/a`, `file://${lake}/${stageId}/b`],
    });
    await writer.stage({ stageId, externalTable: t, spoolHandle: "many", encodedFiles: [], spoolRows: 0n, nameStem: "run", rowGroupSize: 0, sizeLimit: 200_000n, spreadKey: 0 });
    const uploaded = await writer.upload(stageId);
    const inA = uploaded.filter((a) => a.path.includes(`${stageId}/a/`)).length;
    const inB = uploaded.filter((a) => a.path.includes(`${stageId}/b/`)).length;
    expect(inA + inB).toBe(uploaded.length);
    expect(Math.abs(inA - inB)).toBeLessThanOrEqual(1);
  });
});

describe("file targets stay where the policy allows", () => {
  const table = (...connectionStrings: string[]) =>
    create(ExternalTableSchema, { name: "Ext", dataFormat: "csv", columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }], connectionStrings });
  const stage = (stageId: string, t: ReturnType<typeof table>) =>
    writer.stage({ stageId, externalTable: t, spoolHandle: "many", encodedFiles: [], spoolRows: 0n, nameStem: "run", rowGroupSize: 0, sizeLimit: 200_000n, spreadKey: 0 });

  it("refuses to stage for a folder outside the roots or inside the data dir", async () => {
    await expect(stage(`s${++stages}`, table("file:///etc/spillway-lake"))).rejects.toMatchObject({ code: ErrorCode.invalidArgument, message: expect.stringContaining(lake) });
    await expect(stage(`s${++stages}`, table(`file://${dataDir}/lake`))).rejects.toMatchObject({ code: ErrorCode.invalidArgument, message: expect.stringMatching(/data directory/) });
  });

  it("refuses the upload when a symlink out of the root is swapped in after staging, writing nothing there", async () => {
    const stageId = `s${++stages}`;
    const elsewhere = await mkdtemp(join(tmpdir(), "writer-elsewhere-"));
    try {
      await stage(stageId, table(`file://${lake}/${stageId}`));
      await symlink(elsewhere, join(lake, stageId));
      await expect(writer.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.invalidArgument, message: expect.stringContaining(`resolves to '${await realpath(elsewhere)}`) });
      expect(await readdir(elsewhere)).toEqual([]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("deletes each artifact from its own folder when one folder's name starts with another's", async () => {
    const stageId = `s${++stages}`;
    const t = table(`file://${lake}/${stageId}/a`, `file://${lake}/${stageId}/ab`);
    await stage(stageId, t);
    const uploaded = await writer.upload(stageId);
    expect(uploaded.filter((a) => a.path.includes(`${stageId}/ab/`)).length).toBeGreaterThan(0);
    await writer.delete(t, uploaded.map((a) => a.path));
    expect(await readdir(join(lake, stageId, "a"))).toEqual([]);
    expect(await readdir(join(lake, stageId, "ab"))).toEqual([]);
  });
});

import xxhash from "xxhash-wasm";
const hasher = await xxhash();
function hashMod(value: string, n: bigint): string {
  return String(hasher.h64(value) % n);
}

describe("a durable stage", () => {
  it("is uploaded by a writer started after the one that staged it, with the same names, across several targets", async () => {
    const stageId = `s${++stages}`;
    const t = create(ExternalTableSchema, {
      name: "Ext",
      dataFormat: "csv",
      columns: [{ name: "N", type: "long" }, { name: "Key", type: "string" }],
      connectionStrings: [`file://${lake}/${stageId}/a`, `file://${lake}/${stageId}/b`],
    });
    const staged = await writer.stage({ stageId, externalTable: t, spoolHandle: "many", encodedFiles: [], spoolRows: 0n, nameStem: "run", rowGroupSize: 0, sizeLimit: 200_000n, spreadKey: 1 });
    // Another writer process on the same data dir: nothing of the first one's memory.
    const restarted = await ArtifactWriter.create(dataDir, { roots: [lake], dataDir });
    try {
      const uploaded = await restarted.upload(stageId);
      expect(uploaded).toEqual(staged.artifacts);
      const files = [...(await readdir(join(lake, stageId, "a"))), ...(await readdir(join(lake, stageId, "b")))].sort();
      expect(files).toEqual(uploaded.map((a) => a.path.split("/").at(-1)!).sort());
      // An upload asked again (its answer lost) uploads the same files once more; once the run
      // discards the stage, asking again is a run to try again, not a permanent failure.
      expect(await restarted.upload(stageId)).toEqual(uploaded);
      await restarted.discard(stageId);
      await expect(restarted.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted });
    } finally {
      restarted.close();
    }
  });

  it("is uploaded from memory by the writer that staged it; its manifest on disk is what a writer started later reads", async () => {
    const { stageId, staged } = await stageNew(MANY, "many", 0n);
    // Without its manifest, a writer started now has no stage to upload; the one that staged it still does.
    await rm(join(dataDir, "tmp/writer", stageId, "stage.json"));
    const restarted = await ArtifactWriter.create(dataDir, { roots: [lake], dataDir });
    try {
      await expect(restarted.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted });
    } finally {
      restarted.close();
    }
    expect(await writer.upload(stageId)).toEqual(staged.artifacts);
    expect(await readdir(join(lake, stageId))).toEqual(staged.artifacts.map((a) => a.path.split("/").at(-1)!));
    // Uploaded, it stays (from memory) until the run discards it: then it is gone from memory too.
    expect(await writer.upload(stageId)).toEqual(staged.artifacts);
    await writer.discard(stageId);
    await expect(writer.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted });
  });

  it("keeps in memory only the stages its budget holds: without its manifest, a larger one cannot be uploaded", async () => {
    const small = await ArtifactWriter.create(dataDir, { roots: [lake], dataDir }, 3);
    try {
      const { stageId, staged } = await stageNew(MANY, "many", 200_000n, small);
      expect(staged.artifacts.length).toBeGreaterThan(2);
      await rm(join(dataDir, "tmp/writer", stageId, "stage.json"));
      await expect(small.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted });
    } finally {
      small.close();
    }
  });

  it("is not uploaded from memory once its folder is gone: the run is tried again, as for any stage that does not exist", async () => {
    const { stageId } = await stageNew(MANY, "many", 0n);
    await rm(join(dataDir, "tmp/writer", stageId), { recursive: true });
    await expect(writer.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted, message: expect.stringContaining("does not exist") });
  });

  it("is gone once discarded", async () => {
    const { stageId } = await stageNew(MANY, "many", 0n);
    await writer.discard(stageId);
    await expect(writer.upload(stageId)).rejects.toMatchObject({ code: ErrorCode.aborted });
    await expect(readdir(join(lake, stageId))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("a run's manifest", () => {
  it("keeps the MD5 an upload reported and asks the storage for the others", async () => {
    const { artifacts, stageId } = await write({ columns: cols });
    expect(artifacts).toHaveLength(1);
    const table = create(ExternalTableSchema, { name: "Ext", dataFormat: "csv", connectionStrings: [`file://${lake}/${stageId}`], columns: cols });
    const content = await readFile(join(lake, stageId, artifacts[0]!.path.slice(`file://${lake}/${stageId}/`.length)));
    const files = (md5?: string) => JSON.stringify({ files: [{ path: artifacts[0]!.path, numRecords: 5, sizeInBytes: Number(artifacts[0]!.sizeInBytes), ...(md5 ? { md5 } : {}) }] });
    await writer.writeManifest(table, "_spillway/manifests/E/1-a.json", files("cmVwb3J0ZWQgb24gdXBsb2Fk"));
    await writer.writeManifest(table, "_spillway/manifests/E/2-b.json", files());
    const written = async (name: string) => JSON.parse(await readFile(join(lake, stageId, "_spillway/manifests/E", name), "utf8")).files[0].md5;
    // The one given is not checked against the file: the upload's answer is the storage's word.
    expect(await written("1-a.json")).toBe("cmVwb3J0ZWQgb24gdXBsb2Fk");
    expect(await written("2-b.json")).toBe(createHash("md5").update(content).digest("base64"));
  });
});
