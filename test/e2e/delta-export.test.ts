import { describe, expect, it } from "vitest";
import { openStorageTarget, parseConnectionString } from "@spillway/storage";
import { readDeltaTable } from "../support/delta-reader.js";
import { csv, newContainer, withSpillwayAndAzurite } from "../support/fixtures.js";

describe("continuous export to a Delta table in Azurite", () => {
  const env = withSpillwayAndAzurite("split");

  it("holds exactly the exported rows after many runs, across a checkpoint; its schema can be inferred", async () => {
    const container = await newContainer(env.azurite, "delta");
    const cs = env.azurite.connectionString(`${container}/events`);
    await env.sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "At", type: "datetime" }] });
    await env.sw.catalog.createExternalTable({
      name: "EventsDelta",
      kind: "delta",
      columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "At", type: "datetime" }],
      connectionStrings: [cs],
    });
    const created = await env.sw.catalog.createOrAlterContinuousExport({
      name: "ToDelta",
      externalTable: "EventsDelta",
      query: 'SELECT Id, Key, "At" FROM Events',
      properties: { intervalBetweenRuns: { seconds: 3600n } },
    });
    let id = 0;
    for (let round = 1; round <= 12; round++) {
      const rows = Array.from({ length: 3 }, () => [++id, `k${id % 4}`, `2026-02-${String(1 + (id % 28)).padStart(2, "0")}T00:00:00Z`]);
      await env.sw.query.ingest({ table: "Events", format: "csv", payload: csv(rows as string[][]) });
      const run = await env.sw.catalog.runContinuousExportNow({ name: "ToDelta" });
      expect(run.result, run.details).toBe("Completed");
    }
    const table = await readDeltaTable(openStorageTarget(parseConnectionString(cs)));
    expect(table.version).toBe(11);
    expect(table.checkpointVersion).toBe(10);
    expect(table.protocol).toEqual({ minReaderVersion: 1, minWriterVersion: 2 });
    expect(table.txns).toEqual({ [created.export!.id]: 12 });
    expect(table.rows.map((r) => Number(r.Id)).sort((a, b) => a - b)).toEqual(Array.from({ length: 36 }, (_, i) => i + 1));
    // Listed artifacts are exactly the table's data files.
    const listed = (await env.sw.catalog.showExportedArtifacts({ name: "ToDelta" })).artifacts.map((a) => a.path).sort();
    expect(listed).toEqual(table.files.map((f) => `${env.azurite.serviceUrl}/${container}/events/${decodeURIComponent(f.path)}`).sort());

    const inferred = await env.sw.catalog.createExternalTable({ name: "Inferred", kind: "delta", connectionStrings: [cs] });
    expect(inferred.externalTable!.columns.map((c) => `${c.name}:${c.type}`)).toEqual(["Id:long", "Key:string", "At:datetime"]);
    expect(inferred.externalTable!.connectionStrings).toEqual([`${env.azurite.serviceUrl}/${container}/events;*******`]);
  });
});
