import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { ExecuteResponseSchema, KustoService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { refusal } from "./support/fixtures.js";
import { startIdentityProvider, type IdentityProvider } from "./support/identity-provider.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "./support/spillway-processes.js";

// KustoService/Execute against real processes (issue #13): every management command, a pipe
// after a command, KQL queries, the parser's refusals, and who may run what, with
// authentication on so each command needs what its RPC needs.

interface Result {
  columns: Array<{ name: string; type: string }>;
  rows: JsonValue[][];
}

const ROOT = "root";
const names = (r: Result) => r.columns.map((c) => c.name);
/** Rows as objects by column name. */
const records = (r: Result) => r.rows.map((row) => Object.fromEntries(row.map((v, i) => [r.columns[i]!.name, v])));

describe.each<Mode>(["all", "split"])("KustoService/Execute (%s)", (mode) => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;
  let lake: string;
  const clients = new Map<string, ReturnType<typeof createGrpcClient<typeof KustoService>>>();

  /** Execute as user `who` (aaduser=<who>), every message's rows together. */
  async function execute(text: string, who = ROOT): Promise<Result> {
    let client = clients.get(who);
    if (!client) {
      client = createGrpcClient(KustoService, sw.kustoAddress, { token: await idp.userToken(who) });
      clients.set(who, client);
    }
    const result: Result = { columns: [], rows: [] };
    for await (const message of client.execute({ database: "default", text })) {
      const m = toJson(ExecuteResponseSchema, message) as { name: string; columns?: Result["columns"]; rows?: JsonValue[][] };
      expect(m.name).toBe("PrimaryResult");
      result.columns = m.columns ?? [];
      result.rows.push(...(m.rows ?? []));
    }
    return result;
  }

  beforeAll(async () => {
    idp = await startIdentityProvider();
    lake = mkdtempSync(join(tmpdir(), "spillway-kusto-"));
    sw = await startSpillwayProcesses(mode, { ...idp.env([`aaduser=${ROOT}`]), SPILLWAY_FILE_TARGET_ROOTS: lake }, undefined, { token: await idp.userToken(ROOT) });
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await sw?.stop();
    await idp?.stop();
    rmSync(lake, { recursive: true, force: true });
  });

  it("creates and shows tables, with Kusto's columns, and filters a command's result through KQL", async () => {
    const created = await execute(".create table Events (Timestamp:datetime, Key:string, Value:real, N:long) with (docstring='what happened')");
    expect(names(created)).toEqual(["TableName", "Schema", "DatabaseName", "Folder", "DocString"]);
    expect(records(created)[0]).toMatchObject({ TableName: "Events", DatabaseName: "default", DocString: "what happened" });
    expect(JSON.parse(records(created)[0]!.Schema as string).OrderedColumns.map((c: { CslType: string }) => c.CslType)).toEqual(["datetime", "string", "real", "long"]);
    // Kusto answers success without change for a table that exists, and so for a merge that adds nothing.
    expect(records(await execute(".create-merge table Events (Key:string)"))[0]!.TableName).toBe("Events");
    await execute(".create table Hosts (Key:string, Owner:string)");

    const shown = await execute(".show tables");
    expect(shown.columns).toEqual(["TableName", "DatabaseName", "Folder", "DocString"].map((name) => ({ name, type: "string" })));
    expect(shown.rows.map((r) => r[0]).sort()).toEqual(["Events", "Hosts"]);
    expect(await execute(".show tables | where TableName startswith 'Ev'")).toEqual({ columns: shown.columns, rows: [["Events", "default", "", "what happened"]] });
    expect(await execute(".show tables | where TableName != 'Events' | project TableName")).toEqual({ columns: [{ name: "TableName", type: "string" }], rows: [["Hosts"]] });

    const schema = await execute(".show table Hosts schema as json");
    expect(JSON.parse(records(schema)[0]!.Schema as string)).toEqual({
      Name: "Hosts",
      OrderedColumns: [{ Name: "Key", Type: "System.String", CslType: "string" }, { Name: "Owner", Type: "System.String", CslType: "string" }],
    });

    const off = await execute(".delete table Hosts policy ingestiontime");
    expect(records(off)).toEqual([{ PolicyName: "IngestionTimePolicy", EntityName: "[default].[Hosts]", Policy: '{"IsEnabled":false}', ChildEntities: "", EntityType: "Table" }]);
    expect((await sw.catalog.getTable({ name: "Hosts" })).table!.ingestionTimePolicy).toBe(false);
    await execute(".alter table Hosts policy ingestiontime true");
    expect((await sw.catalog.getTable({ name: "Hosts" })).table!.ingestionTimePolicy).toBe(true);
  });

  it("ingests inline data and answers KQL queries, a long beyond 2^53 exactly", async () => {
    const csv = await execute(".ingest inline into table Events <| 2026-01-01T00:00:00Z,k1,1.5,9007199254740993\n2026-01-01T00:01:00Z,k2,2.5,2");
    expect(csv.columns).toEqual([{ name: "ExtentId", type: "guid" }]);
    expect(csv.rows[0]![0]).toMatch(/^[0-9a-f-]{36}$/);
    await execute(`.ingest inline into table Events with (format='json') <| {"Timestamp":"2026-01-01T00:02:00Z","Key":"k3","Value":3.5,"N":3}`);
    await execute(".ingest inline into table Hosts <| k1,ann\nk2,bob");
    expect(await execute("Events | where N > 9007199254740992 | project Key, N")).toEqual({
      columns: [{ name: "Key", type: "string" }, { name: "N", type: "long" }],
      rows: [["k1", "9007199254740993"]],
    });
    expect(await execute("Events\n| join kind=inner Hosts on Key\n| summarize n = count(), total = sum(N) by Owner\n| order by Owner asc")).toEqual({
      columns: [{ name: "Owner", type: "string" }, { name: "n", type: "long" }, { name: "total", type: "long" }],
      rows: [["ann", "1", "9007199254740993"], ["bob", "1", "2"]],
    });
    expect(await execute("Events | where Key == 'none'")).toEqual({ columns: expect.any(Array), rows: [] });
  });

  it("ingests by reference and from queries (append, set-or-append, set-or-replace), and follows an async export with the operations commands", async () => {
    writeFileSync(join(lake, "readings.csv"), "Key,Value\nk1,1\nk2,2\n");
    await execute(".create table Readings (Key:string, Value:long)");
    const ingested = await execute(`.ingest into table Readings (h'file://${join(lake, "readings.csv")}') with (format='csv', ignoreFirstRecord=true)`);
    expect(ingested.columns).toEqual([{ name: "ExtentId", type: "guid" }]);
    expect((await execute("Readings | count")).rows).toEqual([["2"]]);
    expect((await refusal(execute(`.ingest into table Readings (h'file://${join(lake, "readings.csv")}') with (zipPattern='*.csv')`))).message).toContain("none of the uris names one");

    const made = await execute(".set-or-append ReadingsByKey <| Readings | summarize Total = sum(Value) by Key");
    expect(names(made)).toEqual(["ExtentId", "RowCount"]);
    expect(records(made)[0]!.RowCount).toBe("2");
    await execute(".append ReadingsByKey with (tags='[\"ingest-by:k1-again\"]') <| Readings | where Key == 'k1' | summarize Total = sum(Value) by Key");
    expect((await execute("ReadingsByKey | count")).rows).toEqual([["3"]]);
    await execute(".set-or-replace ReadingsByKey <| Readings | summarize Total = sum(Value) by Key | extend Total = Total * 10");
    expect(records(await execute("ReadingsByKey | order by Key asc"))).toEqual([{ Key: "k1", Total: "10" }, { Key: "k2", Total: "20" }]);
    expect((await refusal(execute(".set-or-append async ReadingsByKey <| Readings | summarize Total = sum(Value) by Key"))).message).toContain("async is not supported");

    await execute(`.create external table ReadingsLake (Key:string, Value:long) kind=storage dataformat=csv (h@'file://${join(lake, "readings-out")}')`);
    const id = String(records(await execute(".export async to table ReadingsLake <| Readings"))[0]!.OperationId);
    // As a Kusto user follows an async export: .show operations <id> until it ends.
    let shown: Record<string, JsonValue> = {};
    for (let i = 0; i < 300; i++) {
      const result = await execute(`.show operations ${id}`);
      expect(names(result)).toEqual(["OperationId", "Operation", "NodeId", "StartedOn", "LastUpdatedOn", "Duration", "State", "Status", "Database"]);
      shown = records(result)[0]!;
      if (shown.State !== "InProgress") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(shown).toMatchObject({ OperationId: id, Operation: "ExportToTable", State: "Completed", Status: "", Database: "default" });
    expect(records(await execute(".show operations")).map((o) => o.OperationId)).toContain(id);
    const details = records(await execute(`.show operation ${id} details`));
    expect(details.reduce((n, d) => n + Number(d.NumRecords), 0)).toBe(2);
    expect(details.every((d) => d.ExternalTableName === "ReadingsLake")).toBe(true);
    // Canceling one that ended changes nothing, and says so.
    expect(records(await execute(`.cancel operation ${id}`))).toEqual([expect.objectContaining({ OperationId: id, CancellationState: "Completed", ReasonPhrase: "the operation had already ended" })]);
    // An admin of the two tables written, with no role on the database: its queries would read
    // the database's tables, which needs Database Viewer as well; refused, and nothing written.
    for (const table of ["ReadingsLake", "ReadingsByKey"]) await sw.catalog.addTablePrincipals({ table, role: "admins", principals: ["aaduser=tad"] });
    const operations = (await execute(".show operations")).rows.length;
    for (const command of [".export to table ReadingsLake <| ReadingsByKey", ".set-or-append ReadingsByKey <| ReadingsByKey | summarize Total = sum(Total) by Key"]) {
      const refused = await refusal(execute(command, "tad"));
      expect(refused.code, command).toBe(ErrorCode.permissionDenied);
      expect(refused.message).toContain("its query reads the database's tables, which needs Database Viewer as well");
    }
    expect((await execute(".show operations")).rows).toHaveLength(operations);
    expect((await execute("ReadingsByKey | count")).rows).toEqual([["2"]]);
    // The tests after this one list the database's tables.
    await execute(".drop external table ReadingsLake");
    await execute(".drop table Readings");
    await execute(".drop table ReadingsByKey");
  });

  it("creates, alters, shows and drops external tables", async () => {
    const folder = join(lake, "events");
    const created = await execute(
      `.create external table Lake (Timestamp:datetime, Key:string, Value:real, N:long) kind=storage ` +
        `partition by (Day:datetime = startofday(Timestamp), Shard:long = hash(Key, 4)) ` +
        `pathformat=("day=" datetime_pattern("yyyyMMdd", Day) "/shard=" Shard) dataformat=parquet (h@'file://${folder}') with (folder='exports', docString='the lake')`,
    );
    expect(names(created)).toEqual(["TableName", "TableType", "Folder", "DocString", "Properties", "ConnectionStrings", "Partitions", "PathFormat"]);
    expect(records(created)[0]).toEqual({
      TableName: "Lake",
      TableType: "Blob",
      Folder: "exports",
      DocString: "the lake",
      Properties: '{"Format":"Parquet","Compressed":false,"CompressionType":"snappy","FileExtension":null,"IncludeHeaders":null,"Encoding":"UTF8NoBOM","NamePrefix":null}',
      ConnectionStrings: [`file://${folder}`],
      Partitions: [
        { Function: "StartOfDay", Name: "Day", ColumnName: "Timestamp", Ordinal: 0 },
        { Mod: 4, Name: "Shard", ColumnName: "Key", Ordinal: 1 },
      ],
      PathFormat: '"day=" datetime_pattern("yyyyMMdd", Day) "/shard=" Shard',
    });
    const { externalTable } = await sw.catalog.getExternalTable({ name: "Lake" });
    expect(externalTable!.partitions.map((p) => [p.name, p.function, p.column, String(p.modulo)])).toEqual([["Day", "startofday", "Timestamp", "0"], ["Shard", "hash", "Key", "4"]]);

    await execute(`.create external table Scratch (a:long) kind=storage dataformat=csv (h@'file://${join(lake, "scratch")}')`);
    await execute(`.alter external table Scratch (a:long, b:string) kind=storage dataformat=csv (h@'file://${join(lake, "scratch")}') with (includeHeaders='all')`);
    await execute(`.create-or-alter external table Scratch (a:long, b:string, c:bool) kind=storage dataformat=tsv (h@'file://${join(lake, "scratch")}')`);
    expect((await sw.catalog.getExternalTable({ name: "Scratch" })).externalTable).toMatchObject({ dataFormat: "tsv", columns: [{ name: "a" }, { name: "b" }, { name: "c" }] });

    const shown = await execute(".show external tables");
    expect(names(shown)).toEqual(["TableName", "TableType", "Folder", "DocString", "Properties"]);
    expect(shown.rows.map((r) => r[0]).sort()).toEqual(["Lake", "Scratch"]);
    expect((await execute(".show external table Lake")).rows).toEqual([shown.rows.find((r) => r[0] === "Lake")]);
    expect(await execute(".show external tables | where TableType == 'Blob' and Folder == 'exports' | project TableName, Partitions")).toEqual({
      columns: [{ name: "TableName", type: "string" }, { name: "Partitions", type: "dynamic" }],
      rows: [["Lake", [{ Function: "StartOfDay", Name: "Day", ColumnName: "Timestamp", Ordinal: 0 }, { Mod: 4, Name: "Shard", ColumnName: "Key", Ordinal: 1 }]]],
    });

    const dropped = await execute(".drop external table Scratch");
    expect(names(dropped)).toEqual(["TableName", "TableType", "Folder", "DocString", "Schema", "Properties"]);
    expect(JSON.parse(records(dropped)[0]!.Schema as string)).toEqual([{ Name: "a", CslType: "long" }, { Name: "b", CslType: "string" }, { Name: "c", CslType: "bool" }]);
    expect((await execute(".show external tables")).rows.map((r) => r[0])).toEqual(["Lake"]);
  });

  it("runs a continuous export defined in KQL, and shows, disables, enables and drops it", async () => {
    const created = await execute(
      ".create-or-alter continuous-export EventsToLake over (Events) to table Lake with (intervalBetweenRuns=1h, forcedLatency=1s, sizeLimit=104857600)\n<| Events | join kind=leftouter Hosts on Key | project Timestamp, Key, Value, N",
    );
    expect(names(created)).toEqual([
      "Name", "ExternalTableName", "Query", "ForcedLatency", "IntervalBetweenRuns", "CursorScopedTables", "ExportProperties",
      "LastRunTime", "StartCursor", "IsDisabled", "LastRunResult", "ExportedTo", "IsRunning",
    ]);
    expect(records(created)[0]).toMatchObject({
      Name: "EventsToLake",
      ExternalTableName: "Lake",
      Query: "Events | join kind=leftouter Hosts on Key | project Timestamp, Key, Value, N",
      ForcedLatency: "00:00:01",
      IntervalBetweenRuns: "01:00:00",
      CursorScopedTables: `["['default'].['Events']"]`,
      IsDisabled: false,
    });
    expect(JSON.parse(records(created)[0]!.ExportProperties as string)).toMatchObject({ SizeLimit: 104857600 });
    expect((await sw.catalog.showContinuousExport({ name: "EventsToLake" })).export).toMatchObject({ queryLanguage: "kql", cursorScopedTables: ["Events"] });

    await execute(".ingest inline into table Events <| 2026-02-01T00:00:00Z,k1,4.5,9007199254740995");
    await new Promise((r) => setTimeout(r, 1100)); // forcedLatency
    expect((await sw.catalog.runContinuousExportNow({ name: "EventsToLake" })).result).toBe("Completed");
    const artifacts = await execute(".show continuous-export EventsToLake exported-artifacts | where NumRecords > 0");
    expect(names(artifacts)).toEqual(["Timestamp", "ExternalTableName", "Path", "NumRecords", "SizeInBytes"]);
    expect(artifacts.rows.length).toBeGreaterThan(0);
    expect(records(artifacts).every((a) => a.ExternalTableName === "Lake" && String(a.Path).startsWith(`file://${lake}/events/day=2026`))).toBe(true);
    expect(records(artifacts).reduce((n, a) => n + Number(a.NumRecords), 0)).toBe(1);
    expect(records(await execute(".show continuous-export EventsToLake"))[0]).toMatchObject({ LastRunResult: "Completed", IsRunning: false });
    expect(await execute(".show continuous-exports | project Name, LastRunResult")).toEqual({
      columns: [{ name: "Name", type: "string" }, { name: "LastRunResult", type: "string" }],
      rows: [["EventsToLake", "Completed"]],
    });
    const failures = await execute(".show continuous-export EventsToLake failures");
    expect(failures).toEqual({ columns: ["Timestamp", "OperationId", "Name", "LastSuccessRun", "FailureKind", "Details"].map((name, i) => ({ name, type: i === 0 || i === 3 ? "datetime" : "string" })), rows: [] });

    expect(records(await execute(".disable continuous-export EventsToLake"))[0]!.IsDisabled).toBe(true);
    expect((await sw.catalog.showContinuousExport({ name: "EventsToLake" })).export!.isDisabled).toBe(true);
    expect(records(await execute(".enable continuous-export EventsToLake"))[0]!.IsDisabled).toBe(false);
    const remaining = await execute(".drop continuous-export EventsToLake");
    expect(remaining.rows).toEqual([]);
    expect((await sw.catalog.listContinuousExports({})).exports).toEqual([]);
  });

  it("grants and shows roles with the principals commands; each command needs what its RPC needs", async () => {
    await execute(".add database default viewers ('aaduser=vera') 'reads the lake'");
    await execute(".add database default users ('aaduser=uma')");
    const shown = await execute(".show database default principals | where PrincipalFQN in ('aaduser=vera', 'aaduser=uma')");
    expect(names(shown)).toEqual(["Role", "PrincipalType", "PrincipalDisplayName", "PrincipalObjectId", "PrincipalFQN", "Notes"]);
    expect(records(shown).map((r) => [r.Role, r.PrincipalFQN, r.Notes]).sort()).toEqual([
      ["Database default User", "aaduser=uma", ""],
      ["Database default Viewer", "aaduser=vera", "reads the lake"],
    ]);

    // A viewer reads, and may not drop a table: refused with what DropTable needs, nothing dropped.
    expect((await execute("Events | count", "vera")).rows).toEqual([["4"]]);
    expect((await execute(".show tables", "vera")).rows.map((r) => r[0]).sort()).toEqual(["Events", "Hosts"]);
    const drop = await refusal(execute(".drop table Events", "vera"));
    expect(drop.code).toBe(ErrorCode.permissionDenied);
    expect(drop.message).toContain("CatalogService/DropTable");
    expect(drop.message).toContain("Table Admin");
    expect((await sw.catalog.getTable({ name: "Events" })).table!.name).toBe("Events");
    expect((await refusal(execute(".create table VeraTable (a:long)", "vera"))).code).toBe(ErrorCode.permissionDenied);
    expect((await refusal(execute(".ingest inline into table Events <| 2026-03-01T00:00:00Z,k9,1,1", "vera"))).code).toBe(ErrorCode.permissionDenied);
    expect((await refusal(execute(".show continuous-export Nope failures", "nobody"))).code).toBe(ErrorCode.permissionDenied);
    // Someone with no role sees no table, and may not query.
    expect((await execute(".show tables", "nobody")).rows).toEqual([]);
    expect((await refusal(execute("Events", "nobody"))).code).toBe(ErrorCode.permissionDenied);
    // Nor learns a table's columns, or whether a table exists, from a command refused: naming
    // one that exists or one that does not, the refusal is the same.
    await execute(`.create external table HiddenLake (a:long) kind=storage dataformat=csv (h@'file://${join(lake, "hidden")}')`);
    for (const [exists, missing] of [
      [".create-merge table Events (Secret:string)", ".create-merge table Nope (Secret:string)"],
      [".drop table Events", ".drop table Nope"],
      [".drop external table HiddenLake", ".drop external table Nope"],
      [".append Hosts <| Events | project Secret", ".append Hosts <| Nope | project Secret"],
      [".create-or-alter external table HiddenLake (a:long) kind=storage dataformat=csv (h@'file:///x')", ".create-or-alter external table Nope (a:long) kind=storage dataformat=csv (h@'file:///x')"],
    ]) {
      const [a, b] = [await refusal(execute(exists!, "nobody")), await refusal(execute(missing!, "nobody"))];
      const name = /(Events|HiddenLake)/.exec(exists!)![1]!;
      expect({ code: a.code, message: a.message.replaceAll(name, "Nope") }, exists).toEqual({ code: b.code, message: b.message });
    }
    await execute(".drop external table HiddenLake");

    // A Database User creates a table, becomes its admin (as Kusto makes the creator), and may drop it.
    await execute(".create table UmaTable (a:long)", "uma");
    expect(records(await execute(".show table UmaTable principals", "uma"))).toEqual([
      expect.objectContaining({ Role: "Table default.UmaTable Admin", PrincipalFQN: "aaduser=uma" }),
    ]);
    await execute(".add table UmaTable ingestors ('aaduser=ian')", "uma");
    await execute(".drop table UmaTable ingestors ('aaduser=ian')", "uma");
    expect((await execute(".show table UmaTable principals", "uma")).rows).toHaveLength(1);
    expect(records(await execute(".drop table UmaTable", "uma")).map((r) => r.TableName).sort()).toEqual(["Events", "Hosts"]);
    expect((await refusal(execute(".drop table Hosts", "uma"))).code).toBe(ErrorCode.permissionDenied);

    // Refused or not, commands are audited as the RPCs they ran as.
    const { commands } = await sw.catalog.showCommands({});
    expect(commands.map((c) => [c.principal, c.commandType, c.state])).toEqual(
      expect.arrayContaining([
        ["aaduser=vera", "CatalogService/DropTable", "Failed"],
        ["aaduser=uma", "CatalogService/CreateTable", "Completed"],
        ["aaduser=uma", "CatalogService/DropTable", "Completed"],
      ]),
    );
    await execute(".drop database default users ('aaduser=uma')");
    expect((await refusal(execute(".create table UmaTable2 (a:long)", "uma"))).code).toBe(ErrorCode.permissionDenied);
  });

  describe("refusals: a clear INVALID_ARGUMENT, and nothing changed", () => {
    async function invalid(text: string): Promise<string> {
      const err = await refusal(execute(text));
      expect(err.code, err.message).toBe(ErrorCode.invalidArgument);
      return err.message;
    }
    const exportNames = async () => (await sw.catalog.listContinuousExports({})).exports.map((e) => e.name);

    it("a syntax error, with the parser's code, line and column", async () => {
      expect(await invalid(".create table Broken (a:long")).toMatch(/^KS\d+ at line 1, column \d+: /);
      expect(await invalid(".show tables\n| where TableName ==")).toMatch(/KS\d+ at line 2, column \d+/);
      expect(await invalid("Events\n| project Nope")).toContain("KS142 at line 2, column 11: The name 'Nope' does not refer to any known column");
      expect((await sw.catalog.listTables({})).tables.map((t) => t.name)).not.toContain("Broken");
    });

    it("an unknown command, and an operator Spillway does not translate", async () => {
      expect(await invalid(".frobnicate the tables")).toContain("SPW-KQL-UNKNOWN-COMMAND at line 1, column 1");
      expect(await invalid(".show cluster")).toContain("SPW-KQL-UNKNOWN-COMMAND");
      expect(await invalid("Events | sample 3")).toContain("SPW-KQL-UNSUPPORTED at line 1, column 10");
    });

    it("an unknown with property, and an over table that does not exist", async () => {
      const before = await exportNames();
      expect(await invalid(".create-or-alter continuous-export Bad over (Events) to table Lake with (intervalBetweenRuns=1h, frequency=2) <| Events | project Timestamp, Key, Value, N")).toContain(
        "unknown property 'frequency'",
      );
      expect(await invalid(".create-or-alter continuous-export Bad over (Missing) to table Lake with (intervalBetweenRuns=1h) <| Events | project Timestamp, Key, Value, N")).toContain(
        "over names table 'Missing', which does not exist",
      );
      expect(await invalid(".create table WithFolder (a:long) with (folder='f')")).toContain("unknown property 'folder'");
      expect(await exportNames()).toEqual(before);
      expect((await sw.catalog.listTables({})).tables.map((t) => t.name)).not.toContain("WithFolder");
    });
  });
});
