import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { readArtifacts } from "../support/artifact-reader.js";
import { csv, newContainer, refusal, sortBy, withSpillwayAndAzurite } from "../support/fixtures.js";
import type { Mode } from "../support/spillway-processes.js";

// Replay (SPEC §6a) against real processes and Azurite: an admin moves an export's
// checkpoint back, and its next run exports exactly the records after that cursor again.

describe.each<Mode>(["all", "split"])("replay: resetting an export's cursor (%s)", (mode) => {
  const env = withSpillwayAndAzurite(mode);

  it("re-exports exactly the records after the cursor it was reset to, and keeps the reset in the export's history and the audit log", async () => {
    const { sw, azurite } = env;
    const container = await newContainer(azurite, "replay");
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [azurite.connectionString(container)] });
    await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2], [3]]) });
    const first = await sw.catalog.runContinuousExportNow({ name: "Out" });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[4], [5]]) });
    expect((await sw.catalog.runContinuousExportNow({ name: "Out" })).result).toBe("Completed");

    // Back to where the first run ended: 4 and 5 go out again, and nothing else.
    const reset = await sw.catalog.resetContinuousExportCursor({ name: "Out", cursor: first.toCursor });
    expect(reset.export!.checkpointCursor).toBe(first.toCursor);
    const replayed = await sw.catalog.runContinuousExportNow({ name: "Out" });
    expect(replayed.fromCursor).toBe(first.toCursor);
    const rows = await readArtifacts(azurite.client, replayed.artifacts.map((a) => a.path), "csv", { Id: "BIGINT" });
    expect(sortBy(rows, "Id").map((r) => Number(r.Id))).toEqual([4, 5]);

    // From the beginning: every record.
    await sw.catalog.resetContinuousExportCursor({ name: "Out", cursor: "" });
    const all = await sw.catalog.runContinuousExportNow({ name: "Out" });
    expect(all.artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(5n);

    const resets = (await sw.catalog.showFailures({ name: "Out" })).failures.filter((f) => f.failureKind === "CursorReset");
    expect(resets.map((f) => f.details)).toEqual([expect.stringContaining(`to ${first.toCursor} by anonymous`), expect.stringContaining("by anonymous")]);
    const audited = (await sw.catalog.showCommands({})).commands.filter((c) => c.commandType.endsWith("ResetContinuousExportCursor"));
    expect(audited.map((c) => [c.object, c.state])).toEqual([
      ["Out", "Completed"],
      ["Out", "Completed"],
    ]);
    // A cursor that is not one changes nothing.
    expect(await refusal(sw.catalog.resetContinuousExportCursor({ name: "Out", cursor: "yesterday" }))).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("'yesterday' is not a cursor") });
    expect((await sw.catalog.showContinuousExport({ name: "Out" })).export!.checkpointCursor).toBe(all.toCursor);
  });
});
