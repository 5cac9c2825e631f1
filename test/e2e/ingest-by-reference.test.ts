import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { toJson } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import { csv, newContainer, refusal, withSpillwayAndAzurite } from "../support/fixtures.js";
import type { Mode } from "../support/spillway-processes.js";

// Ingestion by reference and from queries (SPEC §6a) against real processes, Azurite and
// local files.

/** A zip archive of `files` (path → content), as bytes. */
async function zipOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [path, content] of Object.entries(files)) zip.addBuffer(Buffer.from(content), path);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.each<Mode>(["all", "split", "nodes"])("ingestion by reference and from queries (%s)", (mode) => {
  const env = withSpillwayAndAzurite(mode);
  let dir: string;
  let container: string;
  const blob = (name: string) => env.azurite.connectionString(`${container}/${name}`);

  async function rows(query: string, queryLanguage = "sql"): Promise<unknown[][]> {
    const out: unknown[][] = [];
    for await (const batch of env.sw.query.query({ query, queryLanguage })) out.push(...batch.rows.map((r) => toJson(ListValueSchema, r) as unknown[]));
    return out;
  }
  const count = async (table: string) => Number((await rows(`SELECT count(*) FROM ${table}`))[0]![0]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "spillway-by-reference-"));
    container = await newContainer(env.azurite, "sources");
    const blobs = env.azurite.client.getContainerClient(container);
    const put = (name: string, body: Buffer) => blobs.getBlockBlobClient(name).upload(body, body.length);
    await put("a.csv", Buffer.from("Id,Key\n1,a\n2,b\n"));
    await put("b.csv.gz", gzipSync(Buffer.from("Id,Key\n3,c\n")));
    await put("bad.csv", Buffer.from("Id,Key\nnot-a-number,x\n"));
    writeFileSync(join(dir, "c.csv"), "Id,Key\n4,d\n5,e\n");
    await put("batch.zip", await zipOf({ "x/10.csv": "Id,Key\n10,z\n", "11.csv.gz": gzipSync(Buffer.from("Id,Key\n11,y\n")), "readme.txt": "not data" }));
    writeFileSync(join(dir, "local.zip"), await zipOf({ "12.csv": "Id,Key\n12,w\n" }));
    await env.sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    // Blobs are read from Azure, or from a storage host an external table of the database uses: here Azurite's.
    await env.sw.catalog.createExternalTable({ name: "Sources", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [env.azurite.connectionString(container)] });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("ingests blobs (gzip by name) and local files, all in one extent", async () => {
    const done = await env.sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: [blob("a.csv"), blob("b.csv.gz"), `file://${join(dir, "c.csv")}`], ignoreFirstRecord: true });
    expect(done).toMatchObject({ rowCount: 5n, skipped: false });
    expect(done.extentId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await rows("SELECT Id, Key FROM Events ORDER BY Id")).toEqual([["1", "a"], ["2", "b"], ["3", "c"], ["4", "d"], ["5", "e"]]);
    // A retry of the same tagged call is skipped.
    const tagged = { table: "Events", format: "csv", uris: [blob("a.csv")], ignoreFirstRecord: true, ingestByTags: ["a"], ingestIfNotExists: ["a"] };
    expect((await env.sw.query.ingestFromStorage(tagged)).skipped).toBe(false);
    expect((await env.sw.query.ingestFromStorage(tagged)).skipped).toBe(true);
    expect(await count("Events")).toBe(7);
  });

  it("refuses the whole call for one bad, missing or forbidden source, naming it without its key, and ingests nothing", async () => {
    const before = await count("Events");
    const bad = await refusal(env.sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: [blob("a.csv"), blob("bad.csv")], ignoreFirstRecord: true }));
    expect(bad).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("not-a-number") });
    const missing = await refusal(env.sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: [blob("a.csv"), blob("nowhere.csv")] }));
    expect(missing).toMatchObject({ code: status.NOT_FOUND, message: expect.stringContaining("nowhere.csv;*******") });
    expect(missing.message).not.toContain(blob("a.csv").split(";")[1]!);
    const outside = await refusal(env.sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: ["file:///etc/passwd"] }));
    expect(outside).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("outside the folders allowed") });
    expect(await refusal(env.sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: [] }))).toMatchObject({ code: status.INVALID_ARGUMENT });
    // Any other host is refused before anything is fetched: a caller cannot make Spillway read its internal network.
    const elsewhere = await refusal(env.sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: ["http://169.254.169.254/latest/meta-data/x.csv?sig=1"] }));
    expect(elsewhere).toMatchObject({ code: status.PERMISSION_DENIED, message: expect.stringContaining("is not on Azure Blob Storage nor on a storage host an external table of this database uses") });
    expect(await count("Events")).toBe(before);
  });

  it("ingests the files of zip archives that zipPattern selects (gzip inside by name), refusing an archive with none and a pattern without an archive", async () => {
    await env.sw.catalog.createTable({ name: "Zipped", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    const uris = [blob("batch.zip"), `file://${join(dir, "local.zip")}`, blob("a.csv")];
    const done = await env.sw.query.ingestFromStorage({ table: "Zipped", format: "csv", uris, ignoreFirstRecord: true, zipPattern: "\\.csv(\\.gz)?$" });
    expect(done).toMatchObject({ rowCount: 5n, skipped: false });
    expect(await rows("SELECT Id, Key FROM Zipped ORDER BY Id")).toEqual([["1", "a"], ["2", "b"], ["10", "z"], ["11", "y"], ["12", "w"]]);
    // Kusto's glob form: *.csv selects x/10.csv, not 11.csv.gz nor readme.txt.
    const none = await refusal(env.sw.query.ingestFromStorage({ table: "Zipped", format: "csv", uris: [`file://${join(dir, "local.zip")}`, blob("batch.zip")], ignoreFirstRecord: true, zipPattern: "*.tsv" }));
    expect(none).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("has no file matching zipPattern '*.tsv'; nothing was ingested") });
    const notArchive = await refusal(env.sw.query.ingestFromStorage({ table: "Zipped", format: "csv", uris: [blob("a.csv")], zipPattern: "*.csv" }));
    expect(notArchive).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("none of the uris names one") });
    const globbed = await env.sw.query.ingestFromStorage({ table: "Zipped", format: "csv", uris: [blob("batch.zip")], ignoreFirstRecord: true, zipPattern: "*.csv" });
    expect(globbed.rowCount).toBe(1n);
    expect(await count("Zipped")).toBe(6);
  });

  it("appends a query's result, creates a table from one, and replaces a table's rows at once", async () => {
    await env.sw.catalog.createTable({ name: "Copy", columns: [{ name: "Key", type: "string" }, { name: "Id", type: "long" }] });
    // By column name, whatever the order.
    expect(await env.sw.query.ingestFromQuery({ table: "Copy", query: "SELECT Id, Key FROM Events WHERE Id BETWEEN 3 AND 4", mode: "append" })).toMatchObject({ rowCount: 2n, created: false });
    expect(await rows("SELECT Key, Id FROM Copy ORDER BY Id")).toEqual([["c", "3"], ["d", "4"]]);
    expect(await refusal(env.sw.query.ingestFromQuery({ table: "Nope", query: "SELECT 1 AS x", mode: "append" }))).toMatchObject({ code: status.NOT_FOUND });

    const made = await env.sw.query.ingestFromQuery({ table: "ByKey", query: "Events | summarize n = count() by Key", queryLanguage: "kql", mode: "set-or-append" });
    expect(made).toMatchObject({ created: true, rowCount: 5n });
    expect((await env.sw.catalog.getTable({ name: "ByKey" })).table!.columns.map((c) => `${c.name}:${c.type}`)).toEqual(["Key:string", "n:long"]);

    const replaced = await env.sw.query.ingestFromQuery({ table: "ByKey", query: "SELECT 'all' AS Key, count(*) AS n FROM Events", mode: "set-or-replace" });
    expect(replaced).toMatchObject({ created: false, rowCount: 1n });
    expect(await rows("SELECT Key, n FROM ByKey")).toEqual([["all", "7"]]);
  });

  it("on a fact table, exports the rows that replaced others, and not the replaced ones again", async () => {
    const lake = await newContainer(env.azurite, "replaced");
    await env.sw.catalog.createTable({ name: "Facts", columns: [{ name: "Id", type: "long" }] });
    await env.sw.catalog.createExternalTable({ name: "FactsLake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [env.azurite.connectionString(lake)] });
    await env.sw.catalog.createOrAlterContinuousExport({ name: "FactsOut", externalTable: "FactsLake", query: "SELECT Id FROM Facts", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await env.sw.query.ingest({ table: "Facts", format: "csv", payload: csv([[1], [2], [3]]) });
    expect((await env.sw.catalog.runContinuousExportNow({ name: "FactsOut" })).artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(3n);
    await env.sw.query.ingestFromQuery({ table: "Facts", query: "SELECT Id * 10 AS Id FROM Facts", mode: "set-or-replace" });
    expect(await rows("SELECT Id FROM Facts ORDER BY Id")).toEqual([["10"], ["20"], ["30"]]);
    const next = await env.sw.catalog.runContinuousExportNow({ name: "FactsOut" });
    expect(next.artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(3n);
    expect((await env.sw.catalog.runContinuousExportNow({ name: "FactsOut" })).artifacts).toEqual([]);
  });
});
