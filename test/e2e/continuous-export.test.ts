import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readArtifacts } from "../support/artifact-reader.js";
import { artifactPaths, blobNames, csv, manifests, newContainer, sortBy, withSpillwayAndAzurite } from "../support/fixtures.js";
import { waitFor } from "../support/free-port.js";
import type { Mode } from "../support/spillway-processes.js";

const HOUR = { seconds: 3600n };

describe.each<Mode>(["all", "split", "nodes"])("continuous export end to end (%s)", (mode) => {
  const env = withSpillwayAndAzurite(mode);

  it("exports every record exactly once across runs, a restart and a dimension join", async () => {
    const container = await newContainer(env.azurite, "once");
    await env.sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "Value", type: "real" }] });
    await env.sw.catalog.createTable({ name: "Clicks", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    await env.sw.catalog.createTable({ name: "Keys", columns: [{ name: "Key", type: "string" }, { name: "Label", type: "string" }] });
    await env.sw.query.ingest({ table: "Keys", format: "csv", payload: csv([["a", "Alpha"], ["b", "Beta"], ["c", "Gamma"]]) });

    await env.sw.catalog.createExternalTable({
      name: "Labelled",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "Label", type: "string" }, { name: "Value", type: "real" }],
      connectionStrings: [env.azurite.connectionString(`${container}/labelled`)],
    });
    await env.sw.catalog.createExternalTable({
      name: "AllIds",
      kind: "blob",
      dataFormat: "csv",
      columns: [{ name: "Source", type: "string" }, { name: "Id", type: "long" }],
      connectionStrings: [env.azurite.connectionString(`${container}/ids`)],
    });
    const created = await env.sw.catalog.createOrAlterContinuousExport({
      name: "LabelledEvents",
      externalTable: "Labelled",
      query: "SELECT e.Id, e.Key, k.Label, e.Value FROM Events e JOIN Keys k ON e.Key = k.Key",
      over: ["Events"],
      properties: { intervalBetweenRuns: HOUR },
    });
    expect(created.export!.cursorScopedTables).toEqual(["Events"]);
    await env.sw.catalog.createOrAlterContinuousExport({
      name: "EveryId",
      externalTable: "AllIds",
      query: "SELECT 'click' AS Source, Id FROM Clicks UNION ALL SELECT 'event' AS Source, Id FROM Events",
      properties: { intervalBetweenRuns: HOUR },
    });

    const expectedLabelled: Array<Record<string, unknown>> = [];
    const expectedIds: Array<Record<string, unknown>> = [];
    const labels: Record<string, string> = { a: "Alpha", b: "Beta", c: "Gamma", d: "Delta" };
    let id = 0;
    const asked: Array<{ runId: string; fromCursor: string; toCursor: string; artifacts: Array<{ path: string; numRecords: bigint; sizeInBytes: bigint }> }> = [];
    for (let round = 0; round < 4; round++) {
      if (round === 2) {
        // kill -9 between runs: the next run continues from the checkpoint.
        await env.sw.kill();
        await env.sw.start();
      }
      if (round === 1) await env.sw.query.ingest({ table: "Keys", format: "csv", payload: csv([["d", "Delta"]]) });
      for (let batch = 0; batch < 2; batch++) {
        const rows = Array.from({ length: 5 }, () => {
          id++;
          return [id, "abcd"[id % 4]!, id / 2] as [number, string, number];
        });
        await env.sw.query.ingest({ table: "Events", format: "csv", payload: csv(rows) });
        await env.sw.query.ingest({ table: "Clicks", format: "csv", payload: csv(rows.map(([i, k]) => [i + 1000, k])) });
        for (const [i, k, v] of rows) {
          // Key d joins only once the dimension has it (from round 1 on).
          if (k !== "d" || round >= 1) expectedLabelled.push({ Id: String(i), Key: k, Label: labels[k], Value: v });
          expectedIds.push({ Source: "event", Id: String(i) }, { Source: "click", Id: String(i + 1000) });
        }
      }
      const a = await env.sw.catalog.runContinuousExportNow({ name: "LabelledEvents" });
      const b = await env.sw.catalog.runContinuousExportNow({ name: "EveryId" });
      expect(a.result, a.details).toBe("Completed");
      expect(b.result, b.details).toBe("Completed");
      expect(a.artifacts.length).toBe(1);
      asked.push(b);
    }

    // A run with nothing new writes nothing and still completes.
    const before = await blobNames(env.azurite, container);
    const idle = await env.sw.catalog.runContinuousExportNow({ name: "LabelledEvents" });
    expect(idle.result).toBe("Completed");
    expect(idle.artifacts).toEqual([]);
    expect(await blobNames(env.azurite, container)).toEqual(before);

    const labelled = await readArtifacts(env.azurite.client, await artifactPaths(env.sw, "LabelledEvents"), "parquet");
    expect(sortBy(labelled, "Id")).toEqual(sortBy(expectedLabelled, "Id"));
    const ids = await readArtifacts(env.azurite.client, await artifactPaths(env.sw, "EveryId"), "csv", { Source: "VARCHAR", Id: "BIGINT" });
    expect(sortBy(ids, "Source", "Id")).toEqual(sortBy(expectedIds, "Source", "Id"));
    // Storage holds exactly the committed artifacts.
    expect(before.length).toBe((await artifactPaths(env.sw, "LabelledEvents")).length + (await artifactPaths(env.sw, "EveryId")).length);

    const shown = (await env.sw.catalog.showContinuousExport({ name: "LabelledEvents" })).export!;
    expect(shown).toMatchObject({ name: "LabelledEvents", externalTableName: "Labelled", lastRunResult: "Completed", isRunning: false, isDisabled: false });
    expect(shown.startCursor).toMatch(/^\d+$/);
    expect(shown.exportedTo).toBeDefined();

    // The run history (SPEC §8): each run asked for, with its range and what it cost.
    const { runs } = await env.sw.catalog.showRunHistory({ name: "EveryId" });
    expect(runs.map((r) => [r.runId, r.result, r.fromCursor, r.toCursor])).toEqual(asked.map((r) => [r.runId, "Completed", r.fromCursor, r.toCursor]));
    for (const [i, run] of runs.entries()) {
      const sum = (f: (a: { numRecords: bigint; sizeInBytes: bigint }) => bigint) => asked[i]!.artifacts.reduce((n, a) => n + f(a), 0n);
      const { usage, rowsWritten, bytesWritten, phases } = run.resources!;
      expect(rowsWritten).toBe(sum((a) => a.numRecords));
      expect(bytesWritten).toBe(sum((a) => a.sizeInBytes));
      // Both fact tables' rows of the run's range: 10 events and 10 clicks a round.
      expect(usage!.rowsRead).toBe(20n);
      expect(usage!.bytesRead).toBeGreaterThan(0n);
      expect(usage!.cpuTimeUs).toBeGreaterThan(0n);
      expect(usage!.peakProcessMemoryBytes).toBeGreaterThan(0n);
      expect(phases.map((p) => p.name)).toEqual(expect.arrayContaining(["start", "upload"]));
      expect(run.finishedOn!.seconds).toBeGreaterThanOrEqual(run.startedOn!.seconds);
      // The oldest record it exported was ingested before the run, and waited until its commit.
      const ingested = BigInt(run.resources!.oldestRecordCursor);
      expect(ingested).toBeGreaterThan(BigInt(run.fromCursor || "0"));
      expect(ingested).toBeLessThanOrEqual(BigInt(run.toCursor));
      expect(run.lateness).toBeDefined();
    }
    // Beside the data, each run that wrote files has its manifest: its files, each with its MD5, and its range.
    const written = await waitFor("the manifests", async () => {
      const m = await manifests(env.azurite, container);
      return [...m.keys()].filter((n) => n.startsWith("_spillway/manifests/EveryId/")).length === runs.length ? m : undefined;
    });
    for (const run of runs) {
      const manifest = written.get(`_spillway/manifests/EveryId/${run.runNumber}-${run.runId}.json`)!;
      expect(manifest).toMatchObject({ kind: "ContinuousExportRun", runId: run.runId, fromCursor: run.fromCursor || "0", toCursor: run.toCursor });
      expect(manifest.files.map((f) => f.path).sort()).toEqual(asked.find((a) => a.runId === run.runId)!.artifacts.map((a) => (a as { path: string }).path).sort());
      for (const f of manifest.files) {
        // The MD5 of the file's content, as Blob Storage reports it.
        const blobName = f.path.slice(f.path.indexOf(`/${container}/`) + container.length + 2);
        const content = await env.azurite.client.getContainerClient(container).getBlockBlobClient(blobName).downloadToBuffer();
        expect(f.md5).toBe(createHash("md5").update(content).digest("base64"));
      }
    }
    // The idle run of LabelledEvents wrote nothing, and has no manifest: four, not five.
    expect([...written.keys()].filter((n) => n.startsWith("_spillway/manifests/LabelledEvents/"))).toHaveLength(4);

    // Every export of the database when none is named: LabelledEvents' four and its idle run too.
    const all = await env.sw.catalog.showRunHistory({});
    expect(all.runs.filter((r) => r.exportName === "LabelledEvents").map((r) => r.resources?.rowsWritten)).toEqual([
      ...(await env.sw.catalog.showExportedArtifacts({ name: "LabelledEvents" })).artifacts.map((a) => a.numRecords),
      0n,
    ]);

    // The spools and stages the runs discarded are removed once they end (in a thread of their
    // own, after the answer): none stays on any node's disk. (A spool whose run's clean-up the
    // kill -9 cut short stays as it was, not discarded, until it is a day old: not counted.)
    const folders = async () => {
      const left: string[] = [];
      for (const dir of env.sw.dataDirs) {
        for (const root of ["spool", "tmp/writer"]) {
          const entries = await readdir(join(dir, root), { withFileTypes: true }).catch(() => []);
          left.push(...entries.filter((e) => e.isDirectory() && e.name.startsWith(".discarded-")).map((e) => `${root}/${e.name}`));
        }
      }
      return left;
    };
    await expect.poll(folders, { timeout: 10_000 }).toEqual([]);
  });

  it("holds back records younger than forcedLatency", async () => {
    const container = await newContainer(env.azurite, "latency");
    await env.sw.catalog.createTable({ name: "Late", columns: [{ name: "Id", type: "long" }] });
    await env.sw.catalog.createExternalTable({
      name: "LateLake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }],
      connectionStrings: [env.azurite.connectionString(container)],
    });
    await env.sw.catalog.createOrAlterContinuousExport({
      name: "LateExport",
      externalTable: "LateLake",
      query: "SELECT Id FROM Late",
      properties: { intervalBetweenRuns: HOUR, forcedLatency: { seconds: 3n } },
    });
    await env.sw.query.ingest({ table: "Late", format: "csv", payload: csv([[1], [2]]) });
    const early = await env.sw.catalog.runContinuousExportNow({ name: "LateExport" });
    expect(early.result).toBe("Completed");
    expect(early.artifacts).toEqual([]);
    await new Promise((r) => setTimeout(r, 3500));
    const late = await env.sw.catalog.runContinuousExportNow({ name: "LateExport" });
    expect(late.artifacts.map((a) => a.numRecords)).toEqual([2n]);
  });

  it("runs due exports on its own schedule", async () => {
    const container = await newContainer(env.azurite, "sched");
    await env.sw.catalog.createTable({ name: "Ticks", columns: [{ name: "N", type: "long" }] });
    await env.sw.catalog.createExternalTable({
      name: "TickLake",
      kind: "blob",
      dataFormat: "json",
      columns: [{ name: "N", type: "long" }],
      connectionStrings: [env.azurite.connectionString(container)],
    });
    await env.sw.catalog.createOrAlterContinuousExport({
      name: "TickExport",
      externalTable: "TickLake",
      query: "SELECT N FROM Ticks",
      properties: { intervalBetweenRuns: { seconds: 1n } },
    });
    await env.sw.query.ingest({ table: "Ticks", format: "csv", payload: csv([[7], [8]]) });
    const deadline = Date.now() + 20_000;
    let paths: string[] = [];
    while (Date.now() < deadline && paths.length === 0) {
      await new Promise((r) => setTimeout(r, 250));
      paths = await artifactPaths(env.sw, "TickExport");
    }
    expect(paths.length).toBe(1);
    expect(sortBy(await readArtifacts(env.azurite.client, paths, "json"), "N")).toEqual([{ N: "7" }, { N: "8" }]);
    const [blob] = await blobNames(env.azurite, container);
    const raw = (await env.azurite.client.getContainerClient(container).getBlobClient(blob!).downloadToBuffer()).toString();
    expect(raw.trim().split("\n").sort()).toEqual(['{"N":7}', '{"N":8}']);
  });
});
