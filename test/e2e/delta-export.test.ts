import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStorageTarget, parseConnectionString } from "@spillway/storage";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { readDeltaTable } from "../support/delta-reader.js";
import { csv, newContainer } from "../support/fixtures.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

describe("continuous export to a Delta table in Azurite", () => {
  let azurite: Azurite;
  let sw: SpillwayUnderTest;
  beforeAll(async () => {
    azurite = await useAzurite();
    sw = await startSpillwayProcesses("split");
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
  });

  it("holds exactly the exported rows after many runs, across a checkpoint; its schema can be inferred", async () => {
    const container = await newContainer(azurite, "delta");
    const cs = azurite.connectionString(`${container}/events`);
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "At", type: "datetime" }] });
    await sw.catalog.createExternalTable({
      name: "EventsDelta",
      kind: "delta",
      columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "At", type: "datetime" }],
      connectionStrings: [cs],
    });
    const created = await sw.catalog.createOrAlterContinuousExport({
      name: "ToDelta",
      externalTable: "EventsDelta",
      query: 'SELECT Id, Key, "At" FROM Events',
      properties: { intervalBetweenRuns: { seconds: 3600n } },
    });
    let id = 0;
    for (let round = 1; round <= 12; round++) {
      const rows = Array.from({ length: 3 }, () => [++id, `k${id % 4}`, `2026-02-${String(1 + (id % 28)).padStart(2, "0")}T00:00:00Z`]);
      await sw.query.ingest({ table: "Events", format: "csv", payload: csv(rows as string[][]) });
      const run = await sw.catalog.runContinuousExportNow({ name: "ToDelta" });
      expect(run.result, run.details).toBe("Completed");
    }
    const table = await readDeltaTable(openStorageTarget(parseConnectionString(cs)));
    expect(table.version).toBe(11);
    expect(table.checkpointVersion).toBe(10);
    expect(table.protocol).toEqual({ minReaderVersion: 1, minWriterVersion: 2 });
    expect(table.txns).toEqual({ [created.export!.id]: 12 });
    expect(table.rows.map((r) => Number(r.Id)).sort((a, b) => a - b)).toEqual(Array.from({ length: 36 }, (_, i) => i + 1));
    // Listed artifacts are exactly the table's data files.
    const listed = (await sw.catalog.showExportedArtifacts({ name: "ToDelta" })).artifacts.map((a) => a.path).sort();
    expect(listed).toEqual(table.files.map((f) => `${azurite.serviceUrl}/${container}/events/${decodeURIComponent(f.path)}`).sort());

    const inferred = await sw.catalog.createExternalTable({ name: "Inferred", kind: "delta", connectionStrings: [cs] });
    expect(inferred.externalTable!.columns.map((c) => `${c.name}:${c.type}`)).toEqual(["Id:long", "Key:string", "At:datetime"]);
    expect(inferred.externalTable!.connectionStrings).toEqual([`${azurite.serviceUrl}/${container}/events;*******`]);
  });
});
