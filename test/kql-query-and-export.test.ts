import { status } from "@grpc/grpc-js";
import { toJson } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { beforeAll, describe, expect, it } from "vitest";
import { readArtifacts } from "./support/artifact-reader.js";
import { artifactPaths, csv, newContainer, refusal, sortBy, withSpillwayAndAzurite } from "./support/fixtures.js";
import type { Mode } from "./support/spillway-processes.js";

// queryLanguage "kql" in QueryService/Query and CreateOrAlterContinuousExport, against real
// processes, DuckDB and Azurite: the catalog translates an export's KQL once, the scheduler
// runs the SQL it was translated to, and the query service translates ad-hoc KQL itself.

const HOUR = { seconds: 3600n };
const LAKE_COLUMNS = [{ name: "Timestamp", type: "datetime" }, { name: "Host", type: "string" }, { name: "Owner", type: "string" }, { name: "Count", type: "long" }];
const REQUESTS_KQL = 'Requests\n| where Level == "Error"\n| join kind=inner Servers on Host\n| project Timestamp, Host, Owner, Count';
const REQUESTS_SQL = "SELECT r.Timestamp, r.Host, s.Owner, r.Count FROM Requests r JOIN Servers s ON r.Host = s.Host WHERE r.Level = 'Error'";

describe.each<Mode>(["all", "split"])("KQL queries and exports (%s)", (mode) => {
  const env = withSpillwayAndAzurite(mode);

  async function query(text: string): Promise<{ columns: Array<{ name: string; type: string }>; rows: unknown[] }> {
    const result = { columns: [] as Array<{ name: string; type: string }>, rows: [] as unknown[] };
    for await (const batch of env.sw.query.query({ query: text, queryLanguage: "kql" })) {
      if (batch.columns.length) result.columns = batch.columns.map(({ name, type }) => ({ name, type }));
      result.rows.push(...batch.rows.map((r) => toJson(ListValueSchema, r)));
    }
    return result;
  }

  const exportNames = async () => (await env.sw.catalog.listContinuousExports({})).exports.map((e) => e.name);

  beforeAll(async () => {
    await env.sw.catalog.createTable({ name: "Events", columns: [{ name: "Timestamp", type: "datetime" }, { name: "Level", type: "string" }, { name: "Host", type: "string" }, { name: "Count", type: "long" }] });
    await env.sw.catalog.createTable({ name: "Hosts", columns: [{ name: "Host", type: "string" }, { name: "Owner", type: "string" }] });
    await env.sw.query.ingest({
      table: "Events",
      format: "csv",
      payload: csv([
        ["2024-01-01T00:00:00Z", "Error", "web1", 3],
        ["2024-01-01T00:30:00Z", "Info", "web1", 5],
        ["2024-01-01T01:15:00Z", "Error", "db1", 7],
        ["2024-01-02T00:00:00Z", "error", "web2", "9000000000123456789"],
      ]),
    });
    await env.sw.query.ingest({ table: "Hosts", format: "csv", payload: csv([["web1", "ann"], ["db1", "bob"], ["web2", "cid"]]) });
  });

  it("answers a KQL query through QueryService/Query with Kusto's columns, types and values", async () => {
    expect(await query('Events | where Level == "Error" | join kind=inner Hosts on Host | project Timestamp, Host, Owner, Count | order by Timestamp asc')).toEqual({
      columns: LAKE_COLUMNS,
      rows: [
        ["2024-01-01T00:00:00Z", "web1", "ann", "3"],
        ["2024-01-01T01:15:00Z", "db1", "bob", "7"],
      ],
    });
    // =~ ignores case where == does not; a long beyond 2^53 stays exact.
    expect(await query('Events | where Level =~ "error" | summarize n = count(), total = sum(Count) by Day = bin(Timestamp, 1d) | order by Day asc')).toEqual({
      columns: [{ name: "Day", type: "datetime" }, { name: "n", type: "long" }, { name: "total", type: "long" }],
      rows: [
        ["2024-01-01T00:00:00Z", "2", "10"],
        ["2024-01-02T00:00:00Z", "1", "9000000000123456789"],
      ],
    });
  });

  it("exports the same artifacts from an export written in KQL as from its SQL twin", async () => {
    const container = await newContainer(env.azurite, "kql");
    await env.sw.catalog.createTable({ name: "Requests", columns: [{ name: "Timestamp", type: "datetime" }, { name: "Level", type: "string" }, { name: "Host", type: "string" }, { name: "Count", type: "long" }] });
    await env.sw.catalog.createTable({ name: "Servers", columns: [{ name: "Host", type: "string" }, { name: "Owner", type: "string" }] });
    for (const name of ["KqlLake", "SqlLake"]) {
      await env.sw.catalog.createExternalTable({ name, kind: "blob", dataFormat: "parquet", columns: LAKE_COLUMNS, connectionStrings: [env.azurite.connectionString(`${container}/${name}`)] });
    }
    const created = await env.sw.catalog.createOrAlterContinuousExport({
      name: "KqlExport",
      externalTable: "KqlLake",
      query: REQUESTS_KQL,
      queryLanguage: "kql",
      over: ["Requests"],
      properties: { intervalBetweenRuns: HOUR },
    });
    // Shown as written; what runs is the SQL kept beside it.
    expect(created.export).toMatchObject({ query: REQUESTS_KQL, queryLanguage: "kql", cursorScopedTables: ["Requests"] });
    await env.sw.catalog.createOrAlterContinuousExport({ name: "SqlExport", externalTable: "SqlLake", query: REQUESTS_SQL, over: ["Requests"], properties: { intervalBetweenRuns: HOUR } });

    const runBoth = async () => {
      for (const name of ["KqlExport", "SqlExport"]) {
        const run = await env.sw.catalog.runContinuousExportNow({ name });
        expect(run.result, run.details).toBe("Completed");
      }
    };
    await env.sw.query.ingest({ table: "Servers", format: "csv", payload: csv([["web1", "ann"], ["db1", "bob"]]) });
    await env.sw.query.ingest({
      table: "Requests",
      format: "csv",
      payload: csv([
        ["2024-01-01T00:00:00Z", "Error", "web1", 1],
        ["2024-01-01T00:01:00Z", "Info", "web1", 2],
        ["2024-01-01T00:02:00Z", "Error", "db1", 3],
        // No server web2 yet: the inner join drops it, and no later run sees it again.
        ["2024-01-01T00:03:00Z", "Error", "web2", 4],
      ]),
    });
    await runBoth();

    // A restart between runs: runs need no parser, the translated SQL was kept.
    await env.sw.kill();
    await env.sw.start();
    await env.sw.query.ingest({ table: "Servers", format: "csv", payload: csv([["web2", "cid"]]) });
    await env.sw.query.ingest({
      table: "Requests",
      format: "csv",
      payload: csv([
        ["2024-01-02T00:00:00Z", "Error", "web2", 5],
        ["2024-01-02T00:01:00Z", "ERROR", "web1", 6],
        ["2024-01-02T00:02:00Z", "Error", "db1", 7],
      ]),
    });
    await runBoth();

    const expected = [
      ["2024-01-01 00:00:00+00", "web1", "ann", "1"],
      ["2024-01-01 00:02:00+00", "db1", "bob", "3"],
      ["2024-01-02 00:00:00+00", "web2", "cid", "5"],
      ["2024-01-02 00:02:00+00", "db1", "bob", "7"],
    ].map(([Timestamp, Host, Owner, Count]) => ({ Timestamp, Host, Owner, Count }));
    const kqlPaths = await artifactPaths(env.sw, "KqlExport");
    const sqlPaths = await artifactPaths(env.sw, "SqlExport");
    expect(kqlPaths.length).toBe(2);
    expect(sqlPaths.length).toBe(2);
    const kqlRows = sortBy(await readArtifacts(env.azurite.client, kqlPaths, "parquet"), "Timestamp");
    expect(kqlRows).toEqual(sortBy(await readArtifacts(env.azurite.client, sqlPaths, "parquet"), "Timestamp"));
    expect(kqlRows).toEqual(expected);
    const counts = async (name: string) => (await env.sw.catalog.showExportedArtifacts({ name })).artifacts.map((a) => a.numRecords).sort();
    expect(await counts("KqlExport")).toEqual(await counts("SqlExport"));
  });

  it("refuses a KQL syntax error with its line and column, and changes nothing", async () => {
    const before = await exportNames();
    const queried = await refusal(query("Events\n| where Level == "));
    expect(queried.code).toBe(status.INVALID_ARGUMENT);
    expect(queried.message).toMatch(/KS\d+ at line 2, column \d+: /);

    const created = await refusal(
      env.sw.catalog.createOrAlterContinuousExport({ name: "Broken", externalTable: "KqlLake", query: 'Requests\n| where Level == "Error" |', queryLanguage: "kql", properties: { intervalBetweenRuns: HOUR } }),
    );
    expect(created.code).toBe(status.INVALID_ARGUMENT);
    expect(created.message).toMatch(/continuous export 'Broken': KQL query refused: KS\d+ at line 2, column \d+: /);
    expect(await exportNames()).toEqual(before);
  });

  it.each([
    ["an unknown column", "Requests | project Timestamp, Host, Owner = Nope, Count", /KS\d+ at line 1, column 45: .*'Nope'/],
    ["an unsupported operator", "Requests | sample 3 | project Timestamp, Host, Owner = Level, Count", /SPW-KQL-UNSUPPORTED at line 1, column 12: .*sample/],
  ])("refuses %s, clearly, in a query and an export, and creates nothing", async (_, kql, message) => {
    const before = await exportNames();
    const queried = await refusal(query(kql));
    expect(queried.code).toBe(status.INVALID_ARGUMENT);
    expect(queried.message).toMatch(message);
    const created = await refusal(
      env.sw.catalog.createOrAlterContinuousExport({ name: "Refused", externalTable: "KqlLake", query: kql, queryLanguage: "kql", properties: { intervalBetweenRuns: HOUR } }),
    );
    expect(created.code).toBe(status.INVALID_ARGUMENT);
    expect(created.message).toMatch(message);
    expect(await exportNames()).toEqual(before);
  });

  it("leaves an export as it was when an alter's KQL is refused", async () => {
    const altered = await refusal(
      env.sw.catalog.createOrAlterContinuousExport({ name: "KqlExport", externalTable: "KqlLake", query: "Requests | project Nope", queryLanguage: "kql", over: ["Requests"], properties: { intervalBetweenRuns: HOUR } }),
    );
    expect(altered.code).toBe(status.INVALID_ARGUMENT);
    const shown = (await env.sw.catalog.showContinuousExport({ name: "KqlExport" })).export!;
    expect(shown).toMatchObject({ query: REQUESTS_KQL, queryLanguage: "kql", lastRunResult: "Completed" });
    const run = await env.sw.catalog.runContinuousExportNow({ name: "KqlExport" });
    expect(run.result, run.details).toBe("Completed");
  });
});
