import { describe, expect, it } from "vitest";
import { readArtifacts } from "../support/artifact-reader.js";
import { artifactPaths, blobNames, csv, newContainer, sortBy, withSpillwayAndAzurite } from "../support/fixtures.js";
import type { Mode } from "../support/spillway-processes.js";

const HOUR = { seconds: 3600n };

// A row-wise run queries its range a slice at a time (--run-slice-size), each slice's files
// uploading while the next slice is queried, and commits them all at once (README, #1).
describe.each<Mode>(["all", "split"])("a run in slices (%s)", (mode) => {
  // One byte: every extent is a slice of its own.
  const env = withSpillwayAndAzurite(mode, { SPILLWAY_RUN_SLICE_SIZE: "1" });

  it("exports a row-wise run's range slice by slice, every record once, in one commit; a query that combines rows stays whole", async () => {
    const container = await newContainer(env.azurite, "slices");
    await env.sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    for (const [name, format] of [["Evens", "parquet"], ["Counts", "csv"]] as const) {
      await env.sw.catalog.createExternalTable({
        name,
        kind: "blob",
        dataFormat: format,
        columns: name === "Evens" ? [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] : [{ name: "Key", type: "string" }, { name: "N", type: "long" }],
        connectionStrings: [env.azurite.connectionString(`${container}/${name.toLowerCase()}`)],
      });
    }
    await env.sw.catalog.createOrAlterContinuousExport({ name: "EvenEvents", externalTable: "Evens", query: "SELECT Id, Key FROM Events WHERE Id % 2 = 0", properties: { intervalBetweenRuns: HOUR } });
    await env.sw.catalog.createOrAlterContinuousExport({ name: "KeyCounts", externalTable: "Counts", query: "SELECT Key, count(*) AS N FROM Events GROUP BY Key", properties: { intervalBetweenRuns: HOUR } });

    const expected: Array<Record<string, unknown>> = [];
    let id = 0;
    for (let batch = 0; batch < 3; batch++) {
      const rows = Array.from({ length: 10 }, () => [++id, "abc"[id % 3]!] as [number, string]);
      await env.sw.query.ingest({ table: "Events", format: "csv", payload: csv(rows) });
      for (const [i, k] of rows) if (i % 2 === 0) expected.push({ Id: String(i), Key: k });
    }

    const run = await env.sw.catalog.runContinuousExportNow({ name: "EvenEvents" });
    expect(run.result, run.details).toBe("Completed");
    // Three extents, three slices, a file each: all committed by the one run.
    expect(run.artifacts).toHaveLength(3);
    const exported = await readArtifacts(env.azurite.client, await artifactPaths(env.sw, "EvenEvents"), "parquet");
    expect(sortBy(exported, "Id")).toEqual(sortBy(expected, "Id"));
    const { runs } = await env.sw.catalog.showRunHistory({ name: "EvenEvents" });
    expect(runs.map((r) => [r.runId, r.result])).toEqual([[run.runId, "Completed"]]);
    expect(runs[0]!.resources!.rowsWritten).toBe(BigInt(expected.length));
    expect(runs[0]!.resources!.usage!.rowsRead).toBe(30n);
    expect(runs[0]!.resources!.phases.filter((p) => p.name === "upload")).toHaveLength(3);

    // A count over the whole range must not be cut: one file, the totals of all three extents.
    const counts = await env.sw.catalog.runContinuousExportNow({ name: "KeyCounts" });
    expect(counts.result, counts.details).toBe("Completed");
    expect(counts.artifacts).toHaveLength(1);
    const totals = await readArtifacts(env.azurite.client, await artifactPaths(env.sw, "KeyCounts"), "csv", { Key: "VARCHAR", N: "BIGINT" });
    expect(sortBy(totals, "Key")).toEqual([{ Key: "a", N: "10" }, { Key: "b", N: "10" }, { Key: "c", N: "10" }]);

    // Storage holds exactly the committed files.
    expect((await blobNames(env.azurite, container)).length).toBe(4);
  });
});
