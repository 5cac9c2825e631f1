import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { newContainer } from "../support/fixtures.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

const run = promisify(execFile);
const BIN = join(process.cwd(), "tools/cli/spillway.mjs");

/** `spillway <args>` as a user runs it, against the test's Spillway: its output and exit code. */
async function cli(sw: SpillwayUnderTest, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, "--addr", sw.catalogAddress, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("the CLI against a running Spillway", () => {
  let azurite: Azurite;
  let sw: SpillwayUnderTest;
  let dir: string;

  beforeAll(async () => {
    azurite = await useAzurite();
    sw = await startSpillwayProcesses("all");
    dir = mkdtempSync(join(tmpdir(), "spillway-cli-"));
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists tables, ingests files, and runs, shows, disables, enables and drops exports, in table, JSON and CSV", async () => {
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
    const tables = JSON.parse((await cli(sw, "tables", "list", "-o", "json")).stdout) as Array<{ name: string; columns: string }>;
    expect(tables).toEqual([expect.objectContaining({ name: "Events", columns: "Id:long, Key:string" })]);

    // The export first: it exports what is ingested from its creation on.
    const container = await newContainer(azurite, "cli");
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }], connectionStrings: [azurite.connectionString(container)] });
    await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id, Key FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    writeFileSync(join(dir, "a.csv"), "Id,Key\n1,a\n2,b\n");
    writeFileSync(join(dir, "b.csv"), "Id,Key\n3,c\n");
    const ingested = await cli(sw, "ingest", "Events", join(dir, "a.csv"), join(dir, "b.csv"), "--ignore-first-record", "-o", "csv");
    expect(ingested.code).toBe(0);
    // Not a terminal: plain progress lines, one per file.
    expect(ingested.stderr).toMatch(/ingest: a\.csv: 2 rows/);
    expect(ingested.stderr).toMatch(/ingest: b\.csv: 1 rows/);
    expect(ingested.stdout.split("\n")[0]).toBe("file,rows,cursor");


    const listed = await cli(sw, "exports", "list");
    expect(listed.stdout).toMatch(/^name\s+externalTableName\s+isDisabled/);
    expect(listed.stdout).toMatch(/\nOut\s+Lake\s+false/);
    const ran = await cli(sw, "exports", "run", "Out", "-o", "json");
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toEqual([expect.objectContaining({ result: "Completed", records: "3", artifacts: 1 })]);
    const artifacts = JSON.parse((await cli(sw, "exports", "artifacts", "Out", "-o", "json")).stdout) as Array<{ path: string; numRecords: string }>;
    expect(artifacts.map((a) => a.numRecords)).toEqual(["3"]);
    expect(JSON.parse((await cli(sw, "exports", "failures", "Out", "-o", "json")).stdout)).toEqual([]);
    const history = JSON.parse((await cli(sw, "exports", "history", "Out", "-o", "json")).stdout) as Array<{ result: string; resources: { rowsWritten: string; usage: { cpuTimeUs: string } } }>;
    expect(history).toEqual([expect.objectContaining({ result: "Completed", exportName: "Out", resources: expect.objectContaining({ rowsWritten: "3" }) })]);
    expect(Number(history[0]!.resources.usage.cpuTimeUs)).toBeGreaterThan(0);
    // A time ahead of every run shows none; one that is no time is a usage error.
    expect(JSON.parse((await cli(sw, "exports", "history", "--since", "2999-01-01T00:00:00Z", "-o", "json")).stdout)).toEqual([]);
    for (const since of ["yesterday", "90"]) {
      const badSince = await cli(sw, "exports", "history", "--since", since);
      expect(badSince.code).toBe(2);
      expect(badSince.stderr).toMatch(/expected an ISO time or an age/);
    }

    expect((await cli(sw, "exports", "disable", "Out")).code).toBe(0);
    expect(JSON.parse((await cli(sw, "exports", "show", "Out", "-o", "json")).stdout)[0]).toMatchObject({ name: "Out", isDisabled: true });
    // A disabled export's run is refused: one clear line, exit 1.
    const refused = await cli(sw, "exports", "run", "Out");
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe("spillway: continuous export 'Out' is disabled; enable it first");
    expect((await cli(sw, "exports", "enable", "Out")).code).toBe(0);
    expect((await cli(sw, "exports", "show", "Out")).stdout).toMatch(/isDisabled\s+false/);

    // A one-shot export, followed to its end: plain step lines on stderr when not a terminal, the files on stdout.
    const exported = await cli(sw, "export", "Lake", "SELECT Id, Key FROM Events WHERE Id > 1", "-o", "json");
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toEqual([expect.objectContaining({ records: "2" })]);
    expect(exported.stderr).toMatch(/^export [0-9a-f-]{36}: .*Completed \(\d+\.\d s\)$/ms);
    const operations = JSON.parse((await cli(sw, "operations", "list", "-o", "json")).stdout) as Array<{ state: string; operation: string }>;
    expect(operations).toEqual([expect.objectContaining({ operation: "ExportToTable", state: "Completed" })]);
    // Refused before anything starts: one clear line, exit 1.
    const refusedExport = await cli(sw, "export", "Lake", "SELECT 1 AS Wrong");
    expect(refusedExport.code).toBe(1);
    expect(refusedExport.stderr.trim()).toMatch(/^spillway: export to external table 'Lake': the query's output .* does not match/);
    const asyncExport = await cli(sw, "export", "Lake", "Events | project Id, Key", "--kql", "--async", "-o", "json");
    const [{ operationId }] = JSON.parse(asyncExport.stdout) as Array<{ operationId: string }>;
    expect(JSON.parse((await cli(sw, "operations", "cancel", operationId!, "-o", "json")).stdout)[0].operationId).toBe(operationId);

    // An export made after the rows: a backfill sends them, followed to the end (plain lines off a terminal).
    await sw.catalog.createOrAlterContinuousExport({ name: "Later", externalTable: "Lake", query: "SELECT Id, Key FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    const backfilled = await cli(sw, "exports", "backfill", "Later", "-o", "json");
    expect(backfilled.code).toBe(0);
    expect(JSON.parse(backfilled.stdout)).toEqual([expect.objectContaining({ state: "Completed", records: "3" })]);
    expect(backfilled.stderr).toMatch(/backfill: batch 1 of 1, 3 of 3 records\nbackfill: Completed/);
    // Nothing left before its start: refused, one line, exit 1.
    const again = await cli(sw, "backfill", "Later", "--from", JSON.parse((await cli(sw, "exports", "show", "Later", "-o", "json")).stdout)[0].startCursor);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^spillway: fromCursor \d+ is at or after the export's start cursor/);

    const counted = JSON.parse((await cli(sw, "kql", "Events | count", "-o", "json")).stdout);
    expect(counted).toEqual([{ Count: "3" }]);

    expect((await cli(sw, "exports", "drop", "Out")).code).toBe(0);
    const gone = await cli(sw, "exports", "show", "Out");
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim().split("\n")).toEqual(["spillway: continuous export 'Out' does not exist in database 'default'"]);
    // About 25 CLI processes, each a Node start: 37-39 s alone on two cores, past the 60 s default beside other suites in CI.
  }, 180_000);

  it("runs the README's CLI examples as written", async () => {
    const readme = readFileSync(join(process.cwd(), "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### CLI"), readme.indexOf("### Running the services as separate processes"));
    const lines = /```sh\n([\s\S]*?)```/.exec(section)![1]!.trim().split("\n");
    // The quick start's Events table (made by the test before when the file runs whole).
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] }).catch(() => undefined);
    const container = await newContainer(azurite, "cli-readme");
    await sw.catalog.createExternalTable({ name: "EventsLake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }], connectionStrings: [azurite.connectionString(container)] });
    await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "EventsLake", query: "SELECT Id, Key FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    const cwd = mkdtempSync(join(tmpdir(), "spillway-cli-readme-"));
    writeFileSync(join(cwd, "events.csv"), "Id,Key\n10,x\n11,y\n");
    const outputs: string[] = [];
    for (const line of lines) {
      expect(line.startsWith("npx spillway ")).toBe(true);
      // Words and "…" as a shell splits them.
      const args = [...line.slice("npx spillway ".length).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
      const { stdout } = await run(process.execPath, [BIN, "--addr", sw.catalogAddress, ...args], { cwd });
      outputs.push(stdout);
    }
    rmSync(cwd, { recursive: true, force: true });
    expect(outputs[1]).toMatch(/events\.csv\s+2\s/);
    expect(outputs[3]).toMatch(/Completed\s+1\s+2/);
    expect(outputs[4].split("\n")[0]).toBe("timestamp,externalTableName,path,numRecords,sizeInBytes");
    // The run just made, with what it read and wrote.
    expect(outputs[5]).toMatch(/^export\s+run\s+result\s+startedOn/);
    expect(outputs[5]).toMatch(/\nOut\s+1\s+Completed\s+\S+\s+\d+\s+\d+\s+2\s/);
    // The one-shot export: the files it wrote, with every row of Events (2 from the file, and the test's before).
    expect(outputs[6]).toMatch(/^path\s+records\s+bytes/);
    expect(outputs[6]).toContain(container);
    expect(outputs[7]).toMatch(/Count\s*\n-+\s*\n\d+/);
  });

  it("exits 2 on a usage error, and 1 when the server cannot be reached", async () => {
    const usage = await cli(sw, "exports", "frobnicate");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown command 'frobnicate'/);
    const { code, stderr } = await run(process.execPath, [BIN, "--addr", "127.0.0.1:1", "tables", "list"]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  it("draws a progress bar for a large file in a terminal", async () => {
    const big = join(dir, "big.csv");
    writeFileSync(big, Array.from({ length: 400_000 }, (_, i) => `${i},key-${i % 97}`).join("\n") + "\n");
    // `script` gives the CLI a pseudo-terminal, as a user's shell would.
    const { stdout } = await run("script", ["-qec", `${process.execPath} ${BIN} --addr ${sw.catalogAddress} ingest Events ${big}`, "/dev/null"], { maxBuffer: 64 << 20 });
    expect(stdout).toMatch(/\d+% \| \d+\/\d+ bytes \| \d+ rows\/s \| ETA/);
    expect(stdout).toMatch(/100% \|/);
    expect(stdout).toMatch(/big\.csv\s+400000/);
    // An export of it, followed in a terminal: a bar of its steps, full once it completed.
    const followed = await run("script", ["-qec", `${process.execPath} ${BIN} --addr ${sw.catalogAddress} export Lake "SELECT Id, Key FROM Events"`, "/dev/null"], { maxBuffer: 64 << 20 });
    expect(followed.stdout).toMatch(/step \d\/6: \w+ \| \d+\.\d s/);
    expect(followed.stdout).toMatch(/step 6\/6: Completed/);
    // A backfill of them, followed in a terminal: a bar of records and batches.
    await sw.catalog.createOrAlterContinuousExport({ name: "Backfilled", externalTable: "Lake", query: "SELECT Id, Key FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    const bar = await run("script", ["-qec", `${process.execPath} ${BIN} --addr ${sw.catalogAddress} exports backfill Backfilled`, "/dev/null"], { maxBuffer: 64 << 20 });
    expect(bar.stdout).toMatch(/100% \| \d+\/\d+ records \| batch 1\/1 \| \d+ rows\/s/);
  });
});
