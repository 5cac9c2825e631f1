import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonValue } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { GrpcReflection } from "grpc-js-reflection-client";
import { grpcurl, listServices } from "../../tools/grpcurl.js";
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
    const commands = readmeCommands("## Large payloads", "## Security");
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
});
