import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { closeSharedKqlEngine, KqlError, sharedKqlEngine, type KqlSchema } from "@spillway/kql";
import { resultQuery } from "./command-pipe.js";
import { ARTIFACTS, PRINCIPALS, resultOf, TABLE_SCHEMA, TABLES } from "./command-results.js";
import { ResultRenderer, type RenderedTable } from "./result-renderer.js";
import type { ResultTable } from "./result-table.js";

const schema: KqlSchema = { database: "db", tables: [{ name: "Events", columns: [{ name: "Level", type: "string" }] }] };

const tables = resultOf(
  TABLES,
  ["Events", "Errors", "Hosts"].map((name) => ({ TableName: name, Schema: "{}", DatabaseName: "db", Folder: "", DocString: `${name} doc` })),
  TABLE_SCHEMA,
);
// 2^53 + 1 records: a JSON number would round it.
const artifacts = resultOf(ARTIFACTS, [
  { Timestamp: 1_767_225_600_000_000n, ExternalTableName: "Lake", Path: "file:///lake/a.parquet", NumRecords: 9_007_199_254_740_993n, SizeInBytes: 2048n },
  { Timestamp: 1_767_229_200_500_000n, ExternalTableName: "Lake", Path: "file:///lake/b.parquet", NumRecords: 10n, SizeInBytes: 512n },
]);
const principals = resultOf(PRINCIPALS, [
  { Role: "Database db Admin", PrincipalType: "AAD User", PrincipalDisplayName: "bob", PrincipalObjectId: "", PrincipalFQN: "aaduser=bob", Notes: "" },
  { Role: "Database db Viewer", PrincipalType: "AAD Application", PrincipalDisplayName: "dash", PrincipalObjectId: "42", PrincipalFQN: "aadapp=42", Notes: "dashboards" },
]);

describe("a command's result, and a KQL pipe after it", () => {
  let renderer: ResultRenderer;
  beforeAll(async () => {
    renderer = await ResultRenderer.open();
  });
  afterAll(async () => {
    renderer?.close();
    await closeSharedKqlEngine();
  });

  async function execute(text: string, result: ResultTable): Promise<RenderedTable> {
    const command = await sharedKqlEngine().parseCommand(text, schema);
    return renderer.render(result, resultQuery(text, command, result));
  }

  it("renders the result as Kusto writes it: datetimes ISO, longs as exact decimal strings", async () => {
    expect(await execute(".show continuous-export E exported-artifacts", artifacts)).toEqual({
      columns: ARTIFACTS,
      rows: [
        ["2026-01-01T00:00:00Z", "Lake", "file:///lake/a.parquet", "9007199254740993", "2048"],
        ["2026-01-01T01:00:00.5Z", "Lake", "file:///lake/b.parquet", "10", "512"],
      ],
    });
  });

  it("filters through KQL and keeps the command's own columns when the pipe only keeps rows", async () => {
    const filtered = await execute(".show continuous-export E exported-artifacts | where NumRecords > 9007199254740992 | take 5", artifacts);
    // SizeInBytes is Kusto's documented column though the parser's result type lacks it.
    expect(filtered.columns.map((c) => c.name)).toEqual(["Timestamp", "ExternalTableName", "Path", "NumRecords", "SizeInBytes"]);
    expect(filtered.rows).toEqual([["2026-01-01T00:00:00Z", "Lake", "file:///lake/a.parquet", "9007199254740993", "2048"]]);
    const sorted = await execute(".show tables | where TableName startswith_cs 'E' or TableName == 'Hosts' | sort by TableName asc", tables);
    expect(sorted).toEqual({ columns: TABLES, rows: [["Errors", "db", "", "Errors doc"], ["Events", "db", "", "Events doc"], ["Hosts", "db", "", "Hosts doc"]] });
  });

  it("gives the columns the pipe makes when it makes others", async () => {
    expect(await execute(".show tables | where TableName startswith 'E' | project Name = TableName, Doc = strcat(DocString, '!')", tables)).toEqual({
      columns: [{ name: "Name", type: "string" }, { name: "Doc", type: "string" }],
      rows: [["Events", "Events doc!"], ["Errors", "Errors doc!"]],
    });
    expect(await execute(".show tables | count", tables)).toEqual({ columns: [{ name: "Count", type: "long" }], rows: [["3"]] });
    expect(await execute(".show continuous-export E exported-artifacts | summarize total = sum(NumRecords)", artifacts)).toEqual({
      columns: [{ name: "total", type: "long" }],
      rows: [["9007199254741003"]],
    });
  });

  it("refuses a pipe that reads or shows a column Spillway keeps no value for, and answers one that leaves it aside", async () => {
    for (const text of [
      ".show database db principals | project RoleAssignmentIdentifier",
      ".show database db principals | where isnotempty(RoleAssignmentIdentifier)",
      ".show database db principals | extend x = 1",
    ]) {
      const err = await execute(text, principals).then(() => undefined, (e: unknown) => e);
      expect(err, text).toBeInstanceOf(SpillwayError);
      expect((err as SpillwayError).code).toBe(ErrorCode.invalidArgument);
      expect((err as SpillwayError).message).toContain("RoleAssignmentIdentifier");
    }
    expect(await execute(".show database db principals | where Role has 'Viewer'", principals)).toEqual({
      columns: PRINCIPALS,
      rows: [["Database db Viewer", "AAD Application", "dash", "42", "aadapp=42", "dashboards"]],
    });
  });

  it("refuses a pipe the parser refuses, with its code, line and column", async () => {
    const err = await execute(".show tables\n| where Nope == 1", tables).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KqlError);
    expect((err as KqlError).diagnostics[0]).toMatchObject({ code: "KS142", line: 2, column: 9 });
  });
});
