import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { readArtifacts } from "../support/artifact-reader.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { artifactPaths, blobNames, csv, newContainer } from "../support/fixtures.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

// A run whose upload is held up by storage while the export is disabled or dropped:
// the run stops without committing, and storage keeps nothing of it.

describe("disable and drop while a run is in flight", () => {
  let azurite: Azurite;
  let proxy: FaultProxy;
  let sw: SpillwayUnderTest;
  beforeAll(async () => {
    azurite = await useAzurite();
    proxy = await startFaultProxy({ target: azurite.serviceUrl, rate: 0, kinds: ["timeout"], holdMs: 2000, afterShare: 0 });
    sw = await startSpillwayProcesses("split");
  });
  afterAll(async () => {
    await sw?.stop();
    await proxy?.stop();
    await azurite?.stop();
  });

  async function exportThroughProxy(name: string) {
    const container = await newContainer(azurite, name.toLowerCase());
    await sw.catalog.createTable({ name: `${name}T`, columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createExternalTable({ name: `${name}X`, kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [proxy.connectionString(container)] });
    await sw.catalog.createOrAlterContinuousExport({ name, externalTable: `${name}X`, query: `SELECT Id FROM ${name}T`, properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await sw.query.ingest({ table: `${name}T`, format: "csv", payload: csv([[1], [2]]) });
    return container;
  }

  /** Starts a run, holds its upload to `container` in storage, does `change` meanwhile, then lets storage answer. */
  async function runWhile(name: string, container: string, change: () => Promise<unknown>) {
    proxy.setRate(1);
    const run = sw.catalog.runContinuousExportNow({ name });
    // This run's upload: another export's request (the first test's manifest, written after its run) is not it.
    expect(await proxy.waitForActivity(20_000, `/${container}/`)).toBe(true);
    await change();
    proxy.setRate(0);
    return run;
  }

  it("disable: the run fails without committing, its files are removed, and enable exports the rows once", async () => {
    const container = await exportThroughProxy("Paused");
    const before = (await sw.catalog.showContinuousExport({ name: "Paused" })).export!.checkpointCursor;
    const run = await runWhile("Paused", container, () => sw.catalog.disableContinuousExport({ name: "Paused" }));
    expect(run).toMatchObject({ result: "Failed", details: expect.stringMatching(/disabled during the run; nothing was committed/) });
    expect(await artifactPaths(sw, "Paused")).toEqual([]);
    expect(await blobNames(azurite, container)).toEqual([]);
    expect((await sw.catalog.showContinuousExport({ name: "Paused" })).export!.checkpointCursor).toBe(before);

    await sw.catalog.enableContinuousExport({ name: "Paused" });
    const again = await sw.catalog.runContinuousExportNow({ name: "Paused" });
    expect(again.result, again.details).toBe("Completed");
    expect(await readArtifacts(azurite.client, await artifactPaths(sw, "Paused"), "csv", { Id: "BIGINT" })).toEqual([{ Id: "1" }, { Id: "2" }]);
    expect((await blobNames(azurite, container)).length).toBe(1);
  });

  it("drop: the run fails without committing and leaves no file", async () => {
    const container = await exportThroughProxy("Dropped");
    const run = await runWhile("Dropped", container, () => sw.catalog.dropContinuousExport({ name: "Dropped" }));
    expect(run).toMatchObject({ result: "Failed", details: expect.stringMatching(/dropped during the run; nothing was committed/) });
    expect(await blobNames(azurite, container)).toEqual([]);
    await expect(sw.catalog.showContinuousExport({ name: "Dropped" })).rejects.toMatchObject({ code: 5 });
  });
});
