import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";
import { readArtifacts } from "../support/artifact-reader.js";

describe("smoke", () => {
  let azurite: Azurite;
  let sw: SpillwayUnderTest;
  beforeAll(async () => {
    azurite = await useAzurite();
    sw = await startSpillwayProcesses("all");
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
  });

  it("exports ingested rows once", async () => {
    await azurite.client.getContainerClient("smoke").createIfNotExists();
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    await sw.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }],
      connectionStrings: [azurite.connectionString("smoke")],
    });
    await sw.catalog.createOrAlterContinuousExport({
      name: "E",
      externalTable: "Lake",
      query: "SELECT Id, Key FROM Events",
      properties: { intervalBetweenRuns: { seconds: 3600n }, sizeLimit: 0n },
    });
    const ing = await sw.query.ingest({ table: "Events", format: "csv", payload: Buffer.from("1,a\n2,b\n") });
    expect(ing.rowCount).toBe(2n);
    const run = await sw.catalog.runContinuousExportNow({ name: "E" });
    expect(run.result, run.details + sw.output()).toBe("Completed");
    expect(run.artifacts).toHaveLength(1);
    const rows = await readArtifacts(azurite.client, run.artifacts.map((a) => a.path), "parquet");
    expect(rows).toEqual([{ Id: "1", Key: "a" }, { Id: "2", Key: "b" }]);
  });
});
