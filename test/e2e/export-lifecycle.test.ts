import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readArtifacts } from "../support/artifact-reader.js";
import { artifactPaths, csv, newContainer, sortBy, withSpillwayAndAzurite } from "../support/fixtures.js";
import { waitFor } from "../support/free-port.js";
import type { Mode } from "../support/spillway-processes.js";

describe.each<Mode>(["all", "split", "nodes"])("export lifecycle: show, list, disable, enable, drop (%s)", (mode) => {
  const env = withSpillwayAndAzurite(mode);
  // Outside the data dir, where file:// targets may not point (SPEC §7).
  let lake: string;
  beforeAll(() => {
    lake = mkdtempSync(join(tmpdir(), "spillway-lifecycle-lake-"));
  });
  afterAll(() => rmSync(lake, { recursive: true, force: true }));

  it("pauses while disabled, resumes from the checkpoint when enabled, and is gone when dropped", async () => {
    const container = await newContainer(env.azurite, "life");
    await env.sw.catalog.createTable({ name: "Orders", columns: [{ name: "Id", type: "long" }, { name: "Amount", type: "decimal" }, { name: "PlacedAt", type: "datetime" }] });
    await env.sw.catalog.createExternalTable({
      name: "OrdersLake",
      kind: "blob",
      dataFormat: "csv",
      columns: [{ name: "Id", type: "long" }, { name: "Amount", type: "decimal" }, { name: "PlacedAt", type: "datetime" }],
      connectionStrings: [env.azurite.connectionString(`${container}/orders`)],
      properties: { includeHeaders: "none" },
    });
    // Records from before the export exists are not its business (historical data is exported separately).
    await env.sw.query.ingest({ table: "Orders", format: "csv", payload: csv([[0, "1.0", "2026-01-01T00:00:00Z"]]) });
    const created = await env.sw.catalog.createOrAlterContinuousExport({
      name: "OrdersOut",
      externalTable: "OrdersLake",
      query: "SELECT Id, Amount, PlacedAt FROM Orders",
      properties: { intervalBetweenRuns: { seconds: 1n }, forcedLatency: { seconds: 0n } },
    });
    const startCursor = created.export!.startCursor;
    expect(BigInt(startCursor)).toBeGreaterThan(0n);

    const disabled = await env.sw.catalog.disableContinuousExport({ name: "OrdersOut" });
    expect(disabled.export).toMatchObject({ isDisabled: true, exportProperties: expect.objectContaining({ isDisabled: true }) });
    await expect(env.sw.catalog.runContinuousExportNow({ name: "OrdersOut" })).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    await env.sw.query.ingest({ table: "Orders", format: "json", payload: Buffer.from('{"Id":1,"Amount":"2.5","PlacedAt":"2026-01-02T03:04:05.123Z"}\n{"Id":2,"Amount":"-7.25","PlacedAt":"2026-01-02T03:04:06Z"}\n') });
    await new Promise((r) => setTimeout(r, 2500));
    expect(await artifactPaths(env.sw, "OrdersOut")).toEqual([]);

    await env.sw.catalog.enableContinuousExport({ name: "OrdersOut" });
    const run = await env.sw.catalog.runContinuousExportNow({ name: "OrdersOut" });
    expect(run.result, run.details).toBe("Completed");
    const rows = await readArtifacts(env.azurite.client, await artifactPaths(env.sw, "OrdersOut"), "csv", { Id: "BIGINT", Amount: "VARCHAR", PlacedAt: "VARCHAR" });
    expect(sortBy(rows, "Id")).toEqual([
      { Id: "1", Amount: "2.500000000000000000", PlacedAt: "2026-01-02T03:04:05.1230000Z" },
      { Id: "2", Amount: "-7.250000000000000000", PlacedAt: "2026-01-02T03:04:06.0000000Z" },
    ]);

    const listed = await env.sw.catalog.listContinuousExports({});
    expect(listed.exports.map((e) => e.name)).toEqual(["OrdersOut"]);
    // The export is enabled with a 1 s interval, so the scheduler may be mid-run (holding the
    // lease, IsRunning) at any moment: look at it between runs.
    const shown = await waitFor("the export between two scheduled runs", async () => {
      const e = (await env.sw.catalog.showContinuousExport({ name: "OrdersOut" })).export!;
      return e.isRunning ? undefined : e;
    });
    expect(shown).toMatchObject({
      name: "OrdersOut",
      externalTableName: "OrdersLake",
      query: "SELECT Id, Amount, PlacedAt FROM Orders",
      cursorScopedTables: ["Orders"],
      isDisabled: false,
      isRunning: false,
      lastRunResult: "Completed",
      startCursor,
    });
    expect(BigInt(shown.checkpointCursor)).toBeGreaterThan(BigInt(startCursor));
    expect(shown.exportedTo!.seconds).toBeGreaterThan(0n);
    expect(shown.lastRunTime!.seconds).toBeGreaterThan(0n);
    expect(shown.intervalBetweenRuns!.seconds).toBe(1n);

    // Altering keeps the checkpoint: nothing is exported twice.
    await env.sw.catalog.createOrAlterContinuousExport({
      name: "OrdersOut",
      externalTable: "OrdersLake",
      query: "SELECT Id, Amount * 2 AS Amount, PlacedAt FROM Orders",
      properties: { intervalBetweenRuns: { seconds: 3600n } },
    });
    const again = await env.sw.catalog.runContinuousExportNow({ name: "OrdersOut" });
    expect(again.artifacts).toEqual([]);
    expect((await env.sw.catalog.showContinuousExport({ name: "OrdersOut" })).export!.startCursor).toBe(startCursor);

    await env.sw.catalog.dropContinuousExport({ name: "OrdersOut" });
    await expect(env.sw.catalog.showContinuousExport({ name: "OrdersOut" })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(env.sw.catalog.dropContinuousExport({ name: "OrdersOut" })).rejects.toMatchObject({ code: status.NOT_FOUND });
    expect((await env.sw.catalog.listContinuousExports({})).exports).toEqual([]);
  });

  it("fails a run whose external table was dropped, recording why", async () => {
    await env.sw.catalog.createTable({ name: "Gone", columns: [{ name: "Id", type: "long" }] });
    await env.sw.catalog.createExternalTable({ name: "GoneLake", kind: "blob", dataFormat: "parquet", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}/gone`] });
    await env.sw.catalog.createOrAlterContinuousExport({ name: "GoneOut", externalTable: "GoneLake", query: "SELECT Id FROM Gone", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await env.sw.query.ingest({ table: "Gone", format: "csv", payload: csv([[1]]) });
    await env.sw.catalog.dropExternalTable({ name: "GoneLake" });
    const run = await env.sw.catalog.runContinuousExportNow({ name: "GoneOut" });
    expect(run).toMatchObject({ result: "Failed", details: expect.stringMatching(/external table of export 'GoneOut' no longer exists/) });
    const { failures } = await env.sw.catalog.showFailures({ name: "GoneOut" });
    // The scheduler may have tried too (the export was due at once): every attempt is recorded.
    expect(failures).toEqual(expect.arrayContaining([expect.objectContaining({ name: "GoneOut", failureKind: "Failure", operationId: run.runId, isPermanent: true })]));
    expect((await env.sw.catalog.showContinuousExport({ name: "GoneOut" })).export).toMatchObject({ lastRunResult: "Failed" });
  });

  it("drops a table with its extents", async () => {
    await env.sw.catalog.createTable({ name: "Temp", columns: [{ name: "Id", type: "long" }] });
    await env.sw.query.ingest({ table: "Temp", format: "csv", payload: csv([[1]]) });
    await env.sw.catalog.dropTable({ name: "Temp" });
    await expect(env.sw.catalog.getTable({ name: "Temp" })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await env.sw.catalog.createTable({ name: "Temp", columns: [{ name: "Id", type: "long" }] });
    const batches = [];
    for await (const b of env.sw.query.query({ query: "SELECT count(*) AS n FROM Temp" })) batches.push(b);
    expect(batches.flatMap((b) => b.rows).map((r) => r.values[0]!.kind.value)).toEqual(["0"]);
    // The old table's extent files go too: the query service, which owns them, deletes them.
    await waitFor("the dropped extents' files to go", async () => ((await env.sw.extentFiles("Temp")).length === 0 ? true : undefined));
  });
});
