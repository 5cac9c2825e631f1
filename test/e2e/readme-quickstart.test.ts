import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonValue } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { GrpcReflection } from "grpc-js-reflection-client";
import { grpcurl, listServices } from "../../tools/grpcurl.js";
import { waitFor } from "../support/free-port.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

/** The grpcurl commands of a README section, as written (single-quoted JSON). */
function readmeCommands(heading: string, nextHeading: string): Array<{ data: string; address: string; method: string }> {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf(heading), readme.indexOf(nextHeading));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((b) => b.replace(/\\\n/g, " ").split("\n"))
    .filter((line) => line.startsWith("grpcurl "))
    .map((line) => {
      const m = /^grpcurl -plaintext -d '([^']*)' (\S+) (\S+)$/.exec(line.trim());
      if (!m) throw new Error(`README command not in the form the test understands: ${line}`);
      return { data: m[1]!, address: m[2]!, method: m[3]! };
    });
}

describe("the README quick start, through reflection with no proto files", () => {
  let sw: SpillwayUnderTest;
  const lake = "/tmp/spillway-quickstart";
  beforeAll(async () => {
    rmSync(lake, { recursive: true, force: true });
    sw = await startSpillwayProcesses("all");
  });
  afterAll(async () => {
    await sw?.stop();
    rmSync(lake, { recursive: true, force: true });
  });

  it("works as written", async () => {
    const commands = readmeCommands("## Quick start", "## External tables");
    expect(commands.map((c) => c.method.split("/")[1])).toEqual([
      "CreateTable",
      "CreateExternalTable",
      "CreateOrAlterContinuousExport",
      "Ingest",
      "RunContinuousExportNow",
      "ShowExportedArtifacts",
      "ShowContinuousExport",
      "Query",
    ]);
    expect(await listServices(sw.catalogAddress)).toEqual(
      expect.arrayContaining(["spillway.catalog.v1.CatalogService", "spillway.query.v1.QueryService", "grpc.health.v1.Health"]),
    );
    // Older clients speak reflection v1alpha; it is served too.
    const v1alpha = await new GrpcReflection(sw.catalogAddress, credentials.createInsecure(), {}, "v1alpha").listServices();
    expect(v1alpha).toEqual(expect.arrayContaining(["spillway.catalog.v1.CatalogService", "grpc.health.v1.Health"]));
    const results: Record<string, JsonValue[]> = {};
    for (const c of commands) {
      expect(c.address).toBe("127.0.0.1:50051");
      results[c.method.split("/")[1]!] = await grpcurl(sw.catalogAddress, c.method, c.data);
    }
    expect(results.Ingest).toEqual([expect.objectContaining({ rowCount: "2", cursor: expect.stringMatching(/^\d{18}$/) })]);
    expect(results.RunContinuousExportNow).toEqual([expect.objectContaining({ result: "Completed" })]);
    const [{ artifacts }] = results.ShowExportedArtifacts as Array<{ artifacts: Array<{ path: string; numRecords: string; sizeInBytes: string }> }>;
    expect(artifacts).toHaveLength(1);
    expect(artifacts[0]).toMatchObject({ numRecords: "2", externalTableName: "EventsLake" });
    expect(artifacts[0]!.path).toMatch(/^file:\/\/\/tmp\/spillway-quickstart\/lake\/.*\.parquet$/);
    expect(existsSync(fileURLToPath(artifacts[0]!.path))).toBe(true);
    expect(results.ShowContinuousExport).toEqual([
      { export: expect.objectContaining({ name: "EventsToLake", lastRunResult: "Completed", intervalBetweenRuns: "60s", cursorScopedTables: ["Events"] }) },
    ]);
    expect(results.Query).toEqual([{ columns: [{ name: "n", type: "long" }] }, { rows: [["2"]] }]);
  });

  it("accepts the partitioned external table of the README as written", async () => {
    const commands = readmeCommands("## External tables", "## Large payloads");
    expect(commands.map((c) => c.method.split("/")[1])).toEqual(["CreateExternalTable"]);
    const [{ externalTable }] = (await grpcurl(sw.catalogAddress, commands[0]!.method, commands[0]!.data)) as Array<{ externalTable: { partitions: unknown[]; pathFormat: string } }>;
    expect(externalTable.partitions).toEqual([
      { name: "Day", type: "datetime", function: "startofday", column: "Timestamp" },
      { name: "Shard", type: "long", function: "hash", column: "Key", modulo: "4" },
    ]);
    expect(externalTable.pathFormat).toBe('"day=" datetime_pattern("yyyyMMdd", Day) "/shard=" Shard');
  });

  it("ingests the README's IngestStream example, two messages, as one payload", async () => {
    const commands = readmeCommands("## Large payloads", "## History, replay");
    expect(commands.map((c) => c.method.split("/")[1])).toEqual(["IngestStream"]);
    // The README's Events table, made by the quick start; made here when this test runs alone.
    const createTable = readmeCommands("## Quick start", "## External tables")[0]!;
    await grpcurl(sw.catalogAddress, createTable.method, createTable.data).catch((err: { code?: number }) => {
      if (err.code !== 6) throw err; // ALREADY_EXISTS
    });
    const [response] = await grpcurl(sw.catalogAddress, commands[0]!.method, commands[0]!.data);
    expect(response).toEqual(expect.objectContaining({ rowCount: "2", cursor: expect.stringMatching(/^\d{18}$/) }));
    const rows = await grpcurl(sw.catalogAddress, "spillway.query.v1.QueryService/Query", '{"query":"SELECT Key, Value FROM Events WHERE Key IN (\'k3\', \'k4\') ORDER BY Key"}');
    expect(rows).toEqual([{ columns: [{ name: "Key", type: "string" }, { name: "Value", type: "real" }] }, { rows: [["k3", 3.5], ["k4", 4.5]] }]);
  });

  it("runs the README's history, replay and idempotent ingestion examples as written", async () => {
    const commands = readmeCommands("## History, replay", "## Kusto commands");
    expect(commands.map((c) => c.method.split("/")[1])).toEqual(["ExportToTable", "ShowOperations", "BackfillContinuousExport", "ResetContinuousExportCursor", "Ingest", "Ingest", "IngestFromQuery"]);
    // The quick start's table, external table and export; made here when this test runs alone.
    for (const c of readmeCommands("## Quick start", "## External tables").slice(0, 3)) {
      await grpcurl(sw.catalogAddress, c.method, c.data).catch((err: { code?: number }) => {
        if (err.code !== 6) throw err; // ALREADY_EXISTS
      });
    }
    const results = [];
    for (const c of commands) {
      expect(c.address).toBe("127.0.0.1:50051");
      // As the README says, the reset waits for the backfill to end.
      if (c.method.endsWith("/ResetContinuousExportCursor")) {
        await waitFor("the README's backfill to end", async () => {
          const [{ export: shown }] = (await grpcurl(sw.catalogAddress, "spillway.catalog.v1.CatalogService/ShowContinuousExport", '{"name":"EventsToLake"}')) as Array<{ export: { backfill?: { state: string } } }>;
          return shown.backfill?.state === "InProgress" ? undefined : true;
        });
      }
      results.push(await grpcurl(sw.catalogAddress, c.method, c.data));
    }
    const [[exported], [listed], [backfill], [reset], [first], [second], [byKey]] = results as Array<Array<Record<string, any>>>;
    expect(backfill!.operationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(backfill!.progress).toMatchObject({ state: "InProgress" });
    expect(byKey).toMatchObject({ created: true });
    expect(Number(byKey!.rowCount)).toBeGreaterThan(0);
    expect(exported!.operationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(listed!.operations).toEqual(expect.arrayContaining([expect.objectContaining({ operationId: exported!.operationId, operation: "ExportToTable" })]));
    expect(reset!.export).toMatchObject({ name: "EventsToLake" });
    expect(reset!.export.checkpointCursor ?? "").toBe("");
    expect(first).toMatchObject({ rowCount: "1" });
    expect(second).toMatchObject({ skipped: true });
    // The export went on to complete, with every row Events had.
    const done = await waitFor("the README's export to end", async () => {
      const [{ operations }] = (await grpcurl(sw.catalogAddress, "spillway.query.v1.QueryService/ShowOperations", JSON.stringify({ operationId: exported!.operationId }))) as Array<{ operations: Array<{ state: string }> }>;
      return operations[0]!.state === "InProgress" ? undefined : operations[0]!;
    });
    expect(done.state).toBe("Completed");
  });

  it("runs the README's Kusto commands as written, through KustoService/Execute", async () => {
    const commands = readmeCommands("## Kusto commands", "## Security");
    const texts = commands.map((c) => (JSON.parse(c.data) as { text?: string }).text ?? c.method.split("/")[1]!);
    // Every command of the section's list, each once or more (issue #13).
    for (const start of [
      ".create table", ".create-merge table", ".show tables", ".show table Logs schema as json", ".alter table", ".delete table", ".drop table Scratch",
      ".ingest inline", ".create external table", ".alter external table", ".create-or-alter external table", ".show external tables",
      ".show external table LogsLake", ".drop external table", ".create-or-alter continuous-export", ".show continuous-exports",
      ".show continuous-export LogsToLake", ".show continuous-export LogsToLake exported-artifacts", ".show continuous-export LogsToLake failures",
      ".enable continuous-export", ".disable continuous-export", ".drop continuous-export", ".add database", ".show database", ".drop database",
      ".add table", ".show table Logs principals", ".drop table Logs ingestors", "Logs | where", ".set-or-append", ".show operations",
    ]) {
      expect(texts.some((t) => t.startsWith(start)), start).toBe(true);
    }
    expect(commands.filter((c) => c.method !== "spillway.kusto.v1.KustoService/Execute").map((c) => c.method)).toEqual(["spillway.catalog.v1.CatalogService/RunContinuousExportNow"]);
    const results = new Map<string, JsonValue[]>();
    for (const c of commands) {
      expect(c.address).toBe("127.0.0.1:50051");
      results.set(texts[commands.indexOf(c)]!, await grpcurl(sw.catalogAddress, c.method, c.data));
    }
    const only = (start: string) => {
      const found = [...results].filter(([t]) => t.startsWith(start));
      expect(found, start).toHaveLength(1);
      return found[0]![1] as Array<{ name: string; columns: Array<{ name: string; type: string }>; rows?: JsonValue[][] }>;
    };
    expect(only(".show tables | where")).toEqual([
      { name: "PrimaryResult", columns: [{ name: "TableName", type: "string" }, { name: "DocString", type: "string" }], rows: [["Logs", "service logs"]] },
    ]);
    expect(only("Logs | where")).toEqual([
      { name: "PrimaryResult", columns: [{ name: "Level", type: "string" }, { name: "n", type: "long" }, { name: "total", type: "long" }], rows: [["Error", "2", "9007199254740995"]] },
    ]);
    const artifacts = only(".show continuous-export LogsToLake exported-artifacts")[0]!;
    expect(artifacts.columns.map((c) => c.name)).toEqual(["Timestamp", "ExternalTableName", "Path", "NumRecords", "SizeInBytes"]);
    expect(artifacts.rows).toEqual([[expect.any(String), "LogsLake", expect.stringMatching(/^file:\/\/\/tmp\/spillway-quickstart\/logs\/day=20260102\/.*\.parquet$/), "1", expect.stringMatching(/^\d+$/)]]);
    expect(only(".show continuous-export LogsToLake failures")[0]!.rows).toBeUndefined();
    expect((only(".drop continuous-export")[0]!.rows ?? []).map((r) => r[0])).not.toContain("LogsToLake");
    const principals = only(".show database default principals")[0]!;
    expect(principals.rows).toEqual(expect.arrayContaining([["Database default Viewer", "AAD User", "vera@contoso.com", "", "aaduser=vera@contoso.com", "reads the logs"]]));
    expect(only(".show table Logs principals")[0]!.rows).toEqual([[expect.stringMatching(/Ingestor$/), "AAD Application", expect.any(String), expect.any(String), "aadapp=8c4d5a2b-0f3e-4a8e-9d1c-3f2b1a0e9d8c", ""]]);
    expect(only(".show external tables")[0]!.rows!.map((r) => r[0])).toEqual(expect.arrayContaining(["LogsLake", "LogsCsv"]));
    expect(only(".drop table Scratch")[0]!.rows!.map((r) => r[0])).not.toContain("Scratch");
    expect(only(".set-or-append")[0]!.columns.map((c) => c.name)).toEqual(["ExtentId", "RowCount"]);
  });
});
