import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ALL_RIGHTS, type DatabaseRole, type Grants, type TableRole } from "@spillway/auth";
import { alreadyExists, ErrorCode, notFound, SpillwayError } from "@spillway/errors";
import type { Command, KqlSchema } from "@spillway/kql";
import { ContinuousExportSchema, ExternalTableSchema, IngestResponseSchema, TableSchema, type ExternalTable, type Table } from "@spillway/proto";
import { CallGuard, type AuditRecord } from "@spillway/rpc";
import { catalogAccess } from "../../catalog/src/index.js";
import { queryAccess } from "../../query/src/index.js";
import { runCommand } from "./command-runner.js";
import { commandCalls } from "./inner-calls.js";
import type { CallAdmitter, KustoPeers } from "./peer-clients.js";

const DB = "db";

/** A catalog that keeps tables and external tables, and records every call it gets. */
function fakeCatalog() {
  const tables = new Map<string, Table>();
  const externalTables = new Map<string, ExternalTable>();
  const calls: string[] = [];
  const grants: string[] = [];
  const table = (name: string) => {
    const t = tables.get(name);
    if (!t) throw notFound(`table '${name}' does not exist`);
    return t;
  };
  const external = (name: string) => {
    const t = externalTables.get(name);
    if (!t) throw notFound(`external table '${name}' does not exist`);
    return t;
  };
  const putExternal = (req: { name: string; kind: string; dataFormat: string; columns: Array<{ name: string; type: string }>; connectionStrings: string[] }) => {
    const t = create(ExternalTableSchema, { database: DB, name: req.name, kind: req.kind, dataFormat: req.dataFormat, columns: req.columns, connectionStrings: req.connectionStrings });
    externalTables.set(req.name, t);
    return { externalTable: t };
  };
  const client = {
    async createTable(req: { name: string; columns: Array<{ name: string; type: string }>; docString: string }) {
      calls.push("createTable");
      if (tables.has(req.name) || externalTables.has(req.name)) throw alreadyExists(`'${req.name}' already exists`);
      const t = create(TableSchema, { database: DB, name: req.name, columns: req.columns, docString: req.docString, ingestionTimePolicy: true });
      tables.set(req.name, t);
      return { table: t };
    },
    async getTable(req: { name: string }) {
      return { table: table(req.name) };
    },
    async listTables() {
      calls.push("listTables");
      return { tables: [...tables.values()] };
    },
    async dropTable(req: { name: string }) {
      calls.push("dropTable");
      table(req.name);
      tables.delete(req.name);
      return {};
    },
    async createExternalTable(req: Parameters<typeof putExternal>[0]) {
      calls.push("createExternalTable");
      if (externalTables.has(req.name)) throw alreadyExists(`external table '${req.name}' already exists`);
      return putExternal(req);
    },
    async createOrAlterExternalTable(req: Parameters<typeof putExternal>[0]) {
      calls.push("createOrAlterExternalTable");
      return putExternal(req);
    },
    async getExternalTable(req: { name: string }) {
      return { externalTable: external(req.name) };
    },
    async listExternalTables() {
      return { externalTables: [...externalTables.values()] };
    },
    async createOrAlterContinuousExport(req: { name: string; externalTable: string; query: string; queryLanguage: string; over: string[] }) {
      calls.push(`createOrAlterContinuousExport ${req.queryLanguage}: ${req.query}`);
      return { export: create(ContinuousExportSchema, { database: DB, name: req.name, externalTableName: req.externalTable, query: req.query, queryLanguage: req.queryLanguage, cursorScopedTables: req.over }) };
    },
    async addTablePrincipals(req: { table: string; role: string; principals: string[] }) {
      grants.push(`${req.table} ${req.role} ${req.principals.join(",")}`);
      return { principals: [] };
    },
  };
  return { client: client as unknown as KustoPeers["catalog"], tables, externalTables, calls, grants };
}

function fakeQuery() {
  const ingested: Array<{ table: string; format: string; payload: string }> = [];
  const client = {
    async ingest(req: { table: string; format: string; payload: Uint8Array }) {
      ingested.push({ table: req.table, format: req.format, payload: new TextDecoder().decode(req.payload) });
      return create(IngestResponseSchema, { extentId: "a8d7f0c4-1111-2222-3333-444455556666", rowCount: 1n, cursor: "1" });
    },
  };
  return { client: client as unknown as KustoPeers["query"], ingested };
}

/** The process's guard as the registry makes it, with each principal's grants given here. */
function admitter(grants: Record<string, Grants>, audit: AuditRecord[] = []): CallAdmitter {
  const guard = new CallGuard({
    authenticate: async (principal) => principal!,
    grantsOf: async (principal) => grants[principal] ?? { cluster: undefined, database: new Set(), tables: new Map() },
    audit: async (record) => void audit.push(record),
    limits: { query: 4, ingest: 4 },
  });
  return { admit: (rpc, rule, request, principal) => guard.admit(rpc, rule, request, principal) };
}

const role = (database: DatabaseRole[], tables: Record<string, TableRole[]> = {}): Grants => ({
  cluster: undefined,
  database: new Set(database),
  tables: new Map(Object.entries(tables).map(([t, r]) => [t, new Set(r)])),
});

const USERS: Record<string, Grants> = {
  "aaduser=admin": ALL_RIGHTS,
  "aaduser=user": role(["users"]),
  "aaduser=viewer": role(["viewers"]),
  "aaduser=owner": role([], { Events: ["admins"], Lake: ["admins"] }),
};

function setup(principal: string, audit: AuditRecord[] = []) {
  const catalog = fakeCatalog();
  const query = fakeQuery();
  const calls = commandCalls({ catalog: catalog.client, query: query.client }, { catalog: catalogAccess, query: queryAccess }, admitter(USERS, audit), principal);
  const schema = (): KqlSchema => ({ database: DB, tables: [...catalog.tables.values()].map((t) => ({ name: t.name, columns: [] })) });
  const run = (command: Command) => runCommand(command, { calls, database: DB, principal, schema: schema() });
  return { catalog, query, run };
}

async function refused(p: Promise<unknown>): Promise<SpillwayError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SpillwayError);
  return err as SpillwayError;
}

const events: Extract<Command, { kind: "createTable" }> = {
  kind: "createTable", merge: false, table: "Events", columns: [{ name: "Timestamp", type: "datetime" }, { name: "Level", type: "string" }], properties: {},
};
const lake = (mode: "create" | "alter" | "createOrAlter"): Command => ({
  kind: "createExternalTable", mode, name: "Lake", tableKind: "storage", columns: [{ name: "Timestamp", type: "datetime" }],
  partitions: [], pathFormat: [], dataFormat: "parquet", connectionStrings: ["file:///lake"], properties: {},
});

describe("Kusto commands as the RPCs they stand for", () => {
  it("creates a table as CreateTable, answers its schema as Kusto does, and makes the creator its admin", async () => {
    const { run, catalog } = setup("aaduser=user");
    const result = await run(events);
    expect(result.columns.map((c) => c.name)).toEqual(["TableName", "Schema", "DatabaseName", "Folder", "DocString"]);
    expect(result.rows).toEqual([
      {
        TableName: "Events",
        Schema: '{"Name":"Events","OrderedColumns":[{"Name":"Timestamp","Type":"System.DateTime","CslType":"datetime"},{"Name":"Level","Type":"System.String","CslType":"string"}]}',
        DatabaseName: DB,
        Folder: "",
        DocString: "",
      },
    ]);
    expect(catalog.grants).toEqual(["Events admins aaduser=user"]);
  });

  it("answers success without change for a table that exists, as Kusto's .create table does", async () => {
    const { run, catalog } = setup("aaduser=user");
    await run(events);
    const again = await run({ ...events, columns: [{ name: "Other", type: "int" }] });
    expect(again.rows[0]!.Schema).toContain('"Name":"Timestamp"');
    expect(catalog.tables.get("Events")!.columns.map((c) => c.name)).toEqual(["Timestamp", "Level"]);
  });

  it("refuses a .create-merge that would change a column's type or add one, before any change", async () => {
    const { run, catalog } = setup("aaduser=user");
    await run(events);
    catalog.calls.length = 0;
    expect((await refused(run({ ...events, merge: true, columns: [{ name: "Level", type: "long" }] }))).code).toBe(ErrorCode.invalidArgument);
    expect((await refused(run({ ...events, merge: true, columns: [{ name: "Extra", type: "string" }] }))).code).toBe(ErrorCode.failedPrecondition);
    expect(catalog.calls).toEqual([]);
    expect((await run({ ...events, merge: true, columns: [{ name: "Level", type: "string" }] })).rows).toHaveLength(1);
  });

  it("refuses a viewer's .drop table with what DropTable needs, and drops nothing", async () => {
    const admin = setup("aaduser=admin");
    await admin.run(events);
    const audit: AuditRecord[] = [];
    const viewer = setup("aaduser=viewer", audit);
    viewer.catalog.tables.set("Events", admin.catalog.tables.get("Events")!);
    const err = await refused(viewer.run({ kind: "dropTable", table: "Events", ifExists: false }));
    expect(err.code).toBe(ErrorCode.permissionDenied);
    expect(err.message).toContain("CatalogService/DropTable");
    expect(err.message).toContain("Table Admin");
    expect(viewer.catalog.calls).not.toContain("dropTable");
    expect(viewer.catalog.tables.has("Events")).toBe(true);
    // Audited under the RPC's name, as a direct call is.
    expect(audit.map((a) => [a.principal, a.commandType, a.state])).toEqual([["aaduser=viewer", "CatalogService/DropTable", "Failed"]]);
  });

  it("lets a table's admin drop it and shows only the tables the caller may see", async () => {
    const owner = setup("aaduser=owner");
    owner.catalog.tables.set("Events", create(TableSchema, { database: DB, name: "Events" }));
    owner.catalog.tables.set("Secret", create(TableSchema, { database: DB, name: "Secret" }));
    expect((await owner.run({ kind: "showTables", tables: [] })).rows.map((r) => r.TableName)).toEqual(["Events"]);
    const remaining = await owner.run({ kind: "dropTable", table: "Events", ifExists: false });
    expect(remaining.columns.map((c) => c.name)).toEqual(["TableName", "DatabaseName"]);
    expect(remaining.rows).toEqual([]);
    expect(owner.catalog.tables.has("Secret")).toBe(true);
  });

  it("creates an external table for a Database User, but lets only its admin alter it", async () => {
    const user = setup("aaduser=user");
    const created = await user.run(lake("createOrAlter"));
    // Not there yet: a create, which a creator that may not alter cannot turn into an alter.
    expect(user.catalog.calls).toEqual(["createExternalTable"]);
    expect(user.catalog.grants).toEqual(["Lake admins aaduser=user"]);
    expect(created.columns.map((c) => c.name)).toEqual(["TableName", "TableType", "Folder", "DocString", "Properties", "ConnectionStrings", "Partitions", "PathFormat"]);
    expect(created.rows[0]).toMatchObject({ TableName: "Lake", TableType: "Blob", ConnectionStrings: ["file:///lake"], Partitions: [] });
    // The grant is the catalog's to keep; this user holds Database User only.
    const err = await refused(user.run(lake("createOrAlter")));
    expect(err.code).toBe(ErrorCode.permissionDenied);
    expect(err.message).toContain("Table Admin");
    const owner = setup("aaduser=owner");
    owner.catalog.externalTables.set("Lake", user.catalog.externalTables.get("Lake")!);
    await owner.run(lake("alter"));
    expect(owner.catalog.calls).toEqual(["createOrAlterExternalTable"]);
  });

  it("refuses .alter external table of a table that does not exist", async () => {
    const { run } = setup("aaduser=admin");
    expect((await refused(run(lake("alter")))).code).toBe(ErrorCode.notFound);
  });

  it("refuses an export over a table that does not exist, and an unknown with property, before any call", async () => {
    const { run, catalog } = setup("aaduser=admin");
    await run(events);
    catalog.calls.length = 0;
    const exportOf = (over: string[], properties: Record<string, string>): Command => ({
      kind: "createOrAlterContinuousExport", name: "E", over, externalTable: "Lake", properties,
      queryText: "Events", query: { kind: "table", name: "Events", columns: [], span: { start: 0, end: 6 } }, queryTables: ["Events"], queryColumns: [],
    });
    const missing = await refused(run(exportOf(["Missing"], { intervalBetweenRuns: "1m" })));
    expect(missing.code).toBe(ErrorCode.invalidArgument);
    expect(missing.message).toContain("over names table 'Missing', which does not exist");
    // Kusto's names are case-sensitive.
    expect((await refused(run(exportOf(["events"], { intervalBetweenRuns: "1m" })))).code).toBe(ErrorCode.invalidArgument);
    const unknown = await refused(run(exportOf(["Events"], { intervalBetweenRuns: "1m", frequency: "2" })));
    expect(unknown.message).toContain("unknown property 'frequency'");
    expect(catalog.calls).toEqual([]);
    const created = await run(exportOf(["Events"], { intervalBetweenRuns: "1m" }));
    expect(catalog.calls).toEqual(["createOrAlterContinuousExport kql: Events"]);
    expect(created.rows[0]).toMatchObject({ Name: "E", ExternalTableName: "Lake", Query: "Events", CursorScopedTables: `["['db'].['Events']"]`, ForcedLatency: null });
  });

  it("refuses a command with a name it could not read, rather than run another command", async () => {
    const { run, catalog } = setup("aaduser=admin");
    for (const command of [
      { kind: "showTables", tables: [""] },
      { ...events, table: "" },
      { ...events, columns: [{ name: "", type: "long" }] },
      { kind: "dropTable", table: "", ifExists: true },
    ] as Command[]) {
      expect((await refused(run(command))).message).toContain("could not be read");
    }
    expect(catalog.calls).toEqual([]);
  });

  it("ingests inline data as QueryService/Ingest, needing what Ingest needs", async () => {
    const admin = setup("aaduser=admin");
    const result = await admin.run({ kind: "ingestInline", table: "Events", properties: { format: "json" }, data: '{"Level":"a"}\n{"Level":"b"}' });
    expect(admin.query.ingested).toEqual([{ table: "Events", format: "json", payload: '{"Level":"a"}\n{"Level":"b"}' }]);
    expect(result).toMatchObject({ columns: [{ name: "ExtentId", type: "guid" }], rows: [{ ExtentId: "a8d7f0c4-1111-2222-3333-444455556666" }] });
    const viewer = setup("aaduser=viewer");
    const err = await refused(viewer.run({ kind: "ingestInline", table: "Events", properties: {}, data: "x" }));
    expect(err.code).toBe(ErrorCode.permissionDenied);
    expect(err.message).toContain("QueryService/Ingest");
    expect(viewer.query.ingested).toEqual([]);
  });
});
