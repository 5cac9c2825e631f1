import { status } from "@grpc/grpc-js";
import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { ExecuteResponseSchema } from "@spillway/proto";
import { describe, expect, it } from "vitest";
import { openStorageTarget, parseConnectionString } from "@spillway/storage";
import { readArtifacts } from "../support/artifact-reader.js";
import { readDeltaTable } from "../support/delta-reader.js";
import { blobNames, csv, newContainer, refusal, sortBy, withSpillwayAndAzurite } from "../support/fixtures.js";
import { waitFor } from "../support/free-port.js";
import type { Mode, SpillwayUnderTest } from "../support/spillway-processes.js";

// One-shot exports (SPEC §6a) against real processes, DuckDB and Azurite: the seed's
// "Export historical data" recipe, operations, cancel, and a crash mid-way.

const HOUR = { seconds: 3600n };
const ids = (rows: Array<Record<string, unknown>>) => sortBy(rows, "Id").map((r) => Number(r.Id));

/** Until the operation ends: its last state. */
async function ended(sw: SpillwayUnderTest, operationId: string) {
  return waitFor(`operation ${operationId} to end`, async () => {
    const [op] = (await sw.query.showOperations({ operationId })).operations;
    return op && op.state !== "InProgress" ? op : undefined;
  }, 60_000);
}

/** A table big enough that exporting it takes a while: `rows` ids in one extent. */
async function bigTable(sw: SpillwayUnderTest, name: string, rows: number): Promise<void> {
  await sw.catalog.createTable({ name, columns: [{ name: "Id", type: "long" }] });
  await sw.query.ingest({ table: name, format: "csv", payload: Buffer.from(Array.from({ length: rows }, (_, i) => String(i)).join("\n") + "\n") });
}

describe.each<Mode>(["all", "split"])("one-shot export to an external table (%s)", (mode) => {
  const env = withSpillwayAndAzurite(mode);

  it("exports the records before an export's start cursor once, so with the continuous runs every record goes out exactly once (the seed's recipe)", async () => {
    const container = await newContainer(env.azurite, "history");
    const { sw, azurite } = env;
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2], [3]]) });
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [azurite.connectionString(container)] });
    const created = await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: HOUR } });
    const start = created.export!.startCursor;
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[4], [5]]) });

    const history = await sw.query.exportToTable({ externalTable: "Lake", query: `SELECT Id FROM Events WHERE cursor_before_or_at('${start}')` });
    expect(history.artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(3n);
    expect(history.artifacts.every((a) => a.externalTableName === "Lake")).toBe(true);
    const run = await sw.catalog.runContinuousExportNow({ name: "Out" });
    expect(run.result).toBe("Completed");

    const files = [...history.artifacts, ...run.artifacts].map((a) => a.path);
    expect(ids(await readArtifacts(azurite.client, files, "csv", { Id: "BIGINT" }))).toEqual([1, 2, 3, 4, 5]);
    // Storage holds exactly those files.
    expect((await blobNames(azurite, container)).length).toBe(files.length);

    // The operation is listed, with what it wrote.
    const [op] = (await sw.query.showOperations({ operationId: history.operationId })).operations;
    expect(op).toMatchObject({ operation: "ExportToTable", state: "Completed", status: "" });
    expect(op!.resources?.rowsWritten).toBe(3n);
    expect((await sw.query.showOperationDetails({ operationId: history.operationId })).artifacts.map((a) => a.path)).toEqual(history.artifacts.map((a) => a.path));
  });

  it("runs the seed's recipe in Kusto's own words through KustoService: .export async to table <| T | where cursor_before_or_at(StartCursor)", async () => {
    const { sw } = env;
    const container = await newContainer(env.azurite, "kusto");
    const execute = async (text: string) => {
      const rows: JsonValue[][] = [];
      let columns: Array<{ name: string }> = [];
      for await (const m of sw.kusto.execute({ database: "default", text })) {
        const r = toJson(ExecuteResponseSchema, m) as { columns?: Array<{ name: string }>; rows?: JsonValue[][] };
        columns = r.columns ?? columns;
        rows.push(...(r.rows ?? []));
      }
      return rows.map((row) => Object.fromEntries(row.map((v, i) => [columns[i]!.name, v])));
    };
    await execute(`.create external table KustoLake (Id:long) kind=storage dataformat=csv ('${env.azurite.connectionString(container)}')`);
    await execute(".create-or-alter continuous-export KustoOut to table KustoLake with (intervalBetweenRuns=1h) <| Events");
    const [shown] = await execute(".show continuous-export KustoOut");
    const start = String(shown!.StartCursor);
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[6]]) });

    const [asked] = await execute(`.export async to table KustoLake <| Events | where cursor_before_or_at("${start}")`);
    const op = await ended(sw, String(asked!.OperationId));
    expect(op.state).toBe("Completed");
    const run = await sw.catalog.runContinuousExportNow({ name: "KustoOut" });
    const files = [...(await sw.query.showOperationDetails({ operationId: op.operationId })).artifacts, ...run.artifacts].map((a) => a.path);
    // Events held 1 to 5 when the export was made; 6 came after.
    expect(ids(await readArtifacts(env.azurite.client, files, "csv", { Id: "BIGINT" }))).toEqual([1, 2, 3, 4, 5, 6]);
    // And sync, answering what it wrote.
    const written = await execute(".export to table KustoLake <| Events | where Id == 6");
    expect(written).toEqual([{ ExternalTableName: "KustoLake", Path: expect.stringContaining(container), NumRecords: "1" }]);
  });

  it("runs async in KQL: an operation id at once, then Completed with its artifacts", async () => {
    const { sw } = env;
    const container = await newContainer(env.azurite, "async");
    await sw.catalog.createExternalTable({ name: "AsyncLake", kind: "blob", dataFormat: "parquet", columns: [{ name: "Id", type: "long" }], connectionStrings: [env.azurite.connectionString(container)] });
    const { operationId, artifacts } = await sw.query.exportToTable({ externalTable: "AsyncLake", query: "Events | where Id > 2 and Id < 6 | project Id", queryLanguage: "kql", async: true });
    expect(artifacts).toEqual([]);
    expect((await ended(sw, operationId)).state).toBe("Completed");
    const details = (await sw.query.showOperationDetails({ operationId })).artifacts;
    expect(ids(await readArtifacts(env.azurite.client, details.map((a) => a.path), "parquet"))).toEqual([3, 4, 5]);
  });

  it("refuses bad input with a clear error and records no operation", async () => {
    const { sw } = env;
    const before = (await sw.query.showOperations({})).operations.length;
    expect(await refusal(sw.query.exportToTable({ externalTable: "Nowhere", query: "SELECT Id FROM Events" }))).toMatchObject({ code: status.NOT_FOUND, message: expect.stringContaining("'Nowhere'") });
    expect(await refusal(sw.query.exportToTable({ externalTable: "Lake", query: "SELECT Id, Id + 1 AS Other FROM Events" }))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      message: expect.stringContaining("does not match external table 'Lake'"),
    });
    expect(await refusal(sw.query.showOperations({ operationId: "no-such-operation" }))).toMatchObject({ code: status.NOT_FOUND });
    expect((await sw.query.showOperations({})).operations.length).toBe(before);
  });

  it("exports to a Delta table in one log commit, its txn the operation's, beside a continuous export's commits", async () => {
    const { sw, azurite } = env;
    const container = await newContainer(azurite, "delta");
    const cs = azurite.connectionString(container);
    await sw.catalog.createTable({ name: "Facts", columns: [{ name: "Id", type: "long" }] });
    await sw.query.ingest({ table: "Facts", format: "csv", payload: csv([[1], [2], [3]]) });
    await sw.catalog.createExternalTable({ name: "DeltaLake", kind: "delta", columns: [{ name: "Id", type: "long" }], connectionStrings: [cs] });
    const created = await sw.catalog.createOrAlterContinuousExport({ name: "ToDelta", externalTable: "DeltaLake", query: "SELECT Id FROM Facts", properties: { intervalBetweenRuns: HOUR } });
    await sw.query.ingest({ table: "Facts", format: "csv", payload: csv([[4], [5]]) });
    expect((await sw.catalog.runContinuousExportNow({ name: "ToDelta" })).result).toBe("Completed");

    const { operationId } = await sw.query.exportToTable({ externalTable: "DeltaLake", query: `SELECT Id FROM Facts WHERE cursor_before_or_at('${created.export!.startCursor}')`, async: true });
    expect(await ended(sw, operationId)).toMatchObject({ state: "Completed", status: "" });
    const table = await readDeltaTable(openStorageTarget(parseConnectionString(cs)));
    expect(ids(table.rows)).toEqual([1, 2, 3, 4, 5]);
    expect(table.txns).toEqual({ [created.export!.id]: 1, [operationId]: 1 });
    // The operation's artifacts are the data files its commit added.
    const details = (await sw.query.showOperationDetails({ operationId })).artifacts;
    expect(details.reduce((n, a) => n + a.numRecords, 0n)).toBe(3n);
    const tableFiles = table.files.map((f) => `${azurite.serviceUrl}/${container}/${decodeURIComponent(f.path)}`);
    expect(details.every((a) => tableFiles.includes(a.path))).toBe(true);
  });

  /** Starts an async export of Big and waits until it uploads; undefined when it ended before it was seen uploading. */
  async function uploadingExport(externalTable: string): Promise<string | undefined> {
    const { operationId } = await env.sw.query.exportToTable({ externalTable, query: "SELECT Id FROM Big", async: true, properties: { sizeLimit: 1n << 20n } });
    for (;;) {
      const [op] = (await env.sw.query.showOperations({ operationId })).operations;
      if (op!.state !== "InProgress") return undefined;
      if (op!.phase === "upload") return operationId;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it("cancels an operation while it uploads: it ends Canceled and leaves no file", async () => {
    const { sw } = env;
    const container = await newContainer(env.azurite, "cancel");
    await bigTable(sw, "Big", 1_500_000);
    await sw.catalog.createExternalTable({ name: "CancelLake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [env.azurite.connectionString(container)] });
    // Asked before anyone took it, it never starts.
    const queued = await sw.query.exportToTable({ externalTable: "CancelLake", query: "SELECT Id FROM Big", async: true });
    await sw.query.cancelOperation({ operationId: queued.operationId });
    expect((await ended(sw, queued.operationId)).state).toBe("Canceled");
    // Asked while it uploads: what it uploaded goes.
    let operationId: string | undefined;
    for (let attempt = 0; attempt < 5 && !operationId; attempt++) operationId = await uploadingExport("CancelLake");
    expect(operationId, "an export seen while it uploads").toBeDefined();
    await sw.query.cancelOperation({ operationId: operationId! });
    const op = await ended(sw, operationId!);
    expect(op.state).toBe("Canceled");
    expect(op.status).toContain("the files it had written were removed");
    expect((await sw.query.showOperationDetails({ operationId: operationId! })).artifacts).toEqual([]);
    // Only the exports that completed before one was caught uploading left files, each an artifact of theirs.
    const completed = (await sw.query.showOperations({})).operations.filter((o) => o.state === "Completed");
    const kept = (await Promise.all(completed.map(async (o) => (await sw.query.showOperationDetails({ operationId: o.operationId })).artifacts.map((a) => a.path)))).flat();
    expect((await blobNames(env.azurite, container)).map((n) => kept.some((p) => p.endsWith(n)))).not.toContain(false);
  });

  it.runIf(mode === "all")("fails an operation whose process was killed while it uploaded, once it is back, and leaves no file of it", async () => {
    const { sw } = env;
    const container = await newContainer(env.azurite, "killed");
    await sw.catalog.createExternalTable({ name: "KilledLake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [env.azurite.connectionString(container)] });
    let operationId: string | undefined;
    for (let attempt = 0; attempt < 5 && !operationId; attempt++) operationId = await uploadingExport("KilledLake");
    expect(operationId, "an export seen while it uploads").toBeDefined();
    await sw.kill();
    await sw.start();
    const op = await ended(sw, operationId!);
    expect(op.state).toBe("Failed");
    expect(op.status).toContain("did not end cleanly");
    const completed = (await sw.query.showOperations({})).operations.filter((o) => o.state === "Completed");
    const kept = (await Promise.all(completed.map(async (o) => (await sw.query.showOperationDetails({ operationId: o.operationId })).artifacts.map((a) => a.path)))).flat();
    expect((await blobNames(env.azurite, container)).map((n) => kept.some((p) => p.endsWith(n)))).not.toContain(false);
  });
});
