import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CatalogService, CursorService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { AZURITE_KEY, useAzurite, type Azurite } from "../support/azurite.js";
import { csv, newContainer, refusal } from "../support/fixtures.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "../support/spillway-processes.js";

const HOUR = { seconds: 3600n };

async function refused(call: Promise<unknown>, code: number, message: RegExp): Promise<string> {
  const err = await refusal(call);
  expect({ code: err.code, message: err.message }).toMatchObject({ code, message: expect.stringMatching(message) });
  return err.message;
}

describe.each<Mode>(["all", "split", "nodes"])("bad input is refused clearly and changes nothing (%s)", (mode) => {
  let azurite: Azurite;
  let sw: SpillwayUnderTest;
  let container: string;
  const exportBase = () => ({
    name: "Exp",
    externalTable: "Lake",
    query: "SELECT Id, Key FROM Events",
    properties: { intervalBetweenRuns: HOUR },
  });

  beforeAll(async () => {
    azurite = await useAzurite();
    sw = await startSpillwayProcesses(mode);
    container = await newContainer(azurite, "bad");
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    await sw.catalog.createTable({ name: "Keys", columns: [{ name: "Key", type: "string" }] });
    await sw.catalog.createTable({ name: "NoCursor", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }], ingestionTimePolicy: false });
    await sw.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }],
      connectionStrings: [azurite.connectionString(container)],
    });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1, "a"]]) });
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
  });

  it("refuses invalid names and clashing names", async () => {
    await refused(sw.catalog.createTable({ name: "bad name", columns: [{ name: "x", type: "long" }] }), status.INVALID_ARGUMENT, /invalid table name 'bad name'/);
    await refused(sw.catalog.createTable({ name: "T", columns: [{ name: "x", type: "blob" }] }), status.INVALID_ARGUMENT, /unknown type 'blob'/);
    await refused(sw.catalog.createTable({ name: "Events", columns: [{ name: "x", type: "long" }] }), status.ALREADY_EXISTS, /'Events' already exists/);
    await refused(
      sw.catalog.createExternalTable({ name: "Events", kind: "blob", dataFormat: "csv", columns: [{ name: "x", type: "long" }], connectionStrings: ["file:///tmp/x"] }),
      status.ALREADY_EXISTS,
      /table named 'Events' already exists/,
    );
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), name: "no/slash" }), status.INVALID_ARGUMENT, /invalid continuous export name/);
    expect((await sw.catalog.listTables({})).tables.map((t) => t.name).sort()).toEqual(["Events", "Keys", "NoCursor"]);
  });

  it("refuses bad external tables without echoing secrets", async () => {
    const msg = await refused(
      sw.catalog.createExternalTable({ name: "X", kind: "blob", dataFormat: "parquet", columns: [{ name: "Id", type: "long" }], connectionStrings: [`${azurite.serviceUrl};${AZURITE_KEY}`] }),
      status.INVALID_ARGUMENT,
      /names no container/,
    );
    expect(msg).not.toContain(AZURITE_KEY);
    await refused(
      sw.catalog.createExternalTable({ name: "X", kind: "blob", dataFormat: "avro", columns: [{ name: "Id", type: "long" }], connectionStrings: ["file:///tmp/x"] }),
      status.INVALID_ARGUMENT,
      /dataFormat 'avro' is not supported/,
    );
    await refused(
      sw.catalog.createExternalTable({ name: "X", kind: "blob", dataFormat: "parquet", columns: [{ name: "Id", type: "long" }], connectionStrings: ["file:///tmp/x"], properties: { includeHeaders: "all" } }),
      status.INVALID_ARGUMENT,
      /includeHeaders applies to csv and tsv only/,
    );
    const shown = (await sw.catalog.getExternalTable({ name: "Lake" })).externalTable!;
    expect(shown.connectionStrings).toEqual([`${azurite.serviceUrl}/${container};*******`]);
    expect((await sw.catalog.listExternalTables({})).externalTables.map((t) => t.name)).toEqual(["Lake"]);
  });

  it("refuses exports with bad queries, schemas, intervals or fact tables", async () => {
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT Id, Key FROM Nope" }), status.INVALID_ARGUMENT, /unknown table 'Nope'/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT Id, Missing AS Key FROM Events" }), status.INVALID_ARGUMENT, /Missing/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT Key, Id FROM Events" }), status.INVALID_ARGUMENT, /does not match external table 'Lake'.*column 1 is 'Key', expected 'Id'/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT Key AS Id, Key FROM Events" }), status.INVALID_ARGUMENT, /column 'Id' is string, which cannot be written as long/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT Id FROM Events" }), status.INVALID_ARGUMENT, /1 columns instead of 2/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), properties: { intervalBetweenRuns: { nanos: 500_000_000 } } }), status.INVALID_ARGUMENT, /intervalBetweenRuns 500ms is below the minimum of 1s/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), properties: {} }), status.INVALID_ARGUMENT, /intervalBetweenRuns is required/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), properties: { intervalBetweenRuns: HOUR, sizeLimit: 5n * 1024n * 1024n * 1024n } }), status.INVALID_ARGUMENT, /sizeLimit .* is outside/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT Id, Key FROM NoCursor" }), status.FAILED_PRECONDITION, /fact table 'NoCursor' has its IngestionTime policy off/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), over: ["Keys"] }), status.INVALID_ARGUMENT, /over names table 'Keys', which the query does not read/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query: "SELECT 1::BIGINT AS Id, 'x' AS Key" }), status.INVALID_ARGUMENT, /reads no table/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), externalTable: "Gone" }), status.NOT_FOUND, /external table 'Gone' does not exist/);
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), queryLanguage: "python" }), status.INVALID_ARGUMENT, /queryLanguage 'python' is not supported; use sql or kql/);
    // The SQL text given as KQL: the parser's diagnostics, with line and column.
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), queryLanguage: "kql" }), status.INVALID_ARGUMENT, /KQL query refused: KS\d+ at line 1, column \d+/);
    expect((await sw.catalog.listContinuousExports({})).exports).toEqual([]);
  });

  it.each([
    ["read_csv('/etc/passwd')", "SELECT 1::BIGINT AS Id, column0 AS Key FROM read_csv('/etc/passwd')", /table function 'read_csv' is not allowed/],
    ["a file path", "SELECT Id, Key FROM '/etc/passwd'", /unknown table '\/etc\/passwd'/],
    ["a scalar subquery over a file", "SELECT Id, (SELECT max(column0) FROM read_text('/etc/hostname')) AS Key FROM Events", /table function 'read_text' is not allowed/],
    ["COPY ... TO", "COPY (SELECT Id, Key FROM Events) TO '/tmp/x.csv'", /only a single read-only SELECT/],
    ["ATTACH", "ATTACH '/tmp/other.duckdb' AS other", /only a single read-only SELECT/],
    ["SET", "SET enable_external_access = true", /only a single read-only SELECT/],
    ["INSTALL", "INSTALL httpfs", /only a single read-only SELECT/],
    ["two statements", "SELECT Id, Key FROM Events; SELECT Id, Key FROM Events", /exactly one SELECT statement/],
    ["a qualified name", "SELECT Id, Key FROM main.Events", /'main.Events' is qualified/],
    ["current_setting", "SELECT Id, current_setting('allowed_directories')::VARCHAR AS Key FROM Events", /function 'current_setting' is not allowed/],
  ])("the sandbox refuses %s in exports and queries", async (_, query, message) => {
    await refused(sw.catalog.createOrAlterContinuousExport({ ...exportBase(), query }), status.INVALID_ARGUMENT, message);
    const rows = async () => {
      for await (const _ of sw.query.query({ query })) {
        /* drain */
      }
    };
    await refused(rows(), status.INVALID_ARGUMENT, message);
    expect((await sw.catalog.listContinuousExports({})).exports).toEqual([]);
  });

  it("keeps SQL hidden in a comment inside a cursor function's call a comment: nothing of it runs", async () => {
    // DuckDB nests block comments, so all between the first /* and the last */ is one comment.
    const query = "SELECT cursor_current(/* /* */ ) AS c, (SELECT count(*) FROM read_text('/etc/host?ame')) AS leaked; COPY (SELECT 1) TO '/tmp/spillway-leak.csv'; SELECT 1 -- */) AS c";
    const columns: string[] = [];
    let rows = 0;
    for await (const batch of sw.query.query({ query })) {
      columns.push(...batch.columns.map((c) => c.name));
      rows += batch.rows.length;
    }
    expect(columns).toEqual(["c"]);
    expect(rows).toBe(1);
  });

  it("refuses a payload that does not fit the schema, whole, naming line and column", async () => {
    const count = async () => {
      const batches = [];
      for await (const b of sw.query.query({ query: "SELECT count(*) AS n FROM Events" })) batches.push(b);
      return batches.flatMap((b) => b.rows).map((r) => r.values[0]!.kind.value)[0];
    };
    const before = await count();
    await refused(sw.query.ingest({ table: "Events", format: "csv", payload: csv([[2, "b"], [3, "c"], ["four", "d"]]) }), status.INVALID_ARGUMENT, /line 3, column 'Id'.*'four'/);
    await refused(sw.query.ingest({ table: "Events", format: "csv", payload: csv([[2, "b"], [3]]) }), status.INVALID_ARGUMENT, /line 2: expected 2 columns, found 1/);
    await refused(sw.query.ingest({ table: "Events", format: "json", payload: Buffer.from('{"Id":1,"Key":"a"}\n{"Id":"x","Key":"b"}\n') }), status.INVALID_ARGUMENT, /line 2, column 'Id'/);
    await refused(sw.query.ingest({ table: "Events", format: "xml", payload: Buffer.from("<a/>") }), status.INVALID_ARGUMENT, /format 'xml' is not supported/);
    await refused(sw.query.ingest({ table: "Nope", format: "csv", payload: csv([[1, "a"]]) }), status.NOT_FOUND, /table 'Nope' does not exist/);
    expect(await count()).toBe(before);
  });

  it("answers internal RPCs only to Spillway's own services", async () => {
    const cursor = createGrpcClient(CursorService, mode !== "split" ? sw.catalogAddress : sw.catalogAddress.replace(/:\d+$/, ":0"));
    cursor.close();
    await refused(sw.cursor.commitExtent({ database: "default", table: "Events", extentId: "x", path: "/etc/passwd" }), status.PERMISSION_DENIED, /CommitExtent is internal/);
    const catalog = createGrpcClient(CatalogService, sw.catalogAddress);
    await refused(catalog.listExportSpecs({}), status.PERMISSION_DENIED, /ListExportSpecs is internal/);
    catalog.close();
  });
});
