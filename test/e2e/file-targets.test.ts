import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { csv, refusal } from "../support/fixtures.js";
import { startIdentityProvider, type IdentityProvider } from "../support/identity-provider.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

const columns = [{ name: "Id", type: "long" }];
const lakeAt = (name: string, connectionString: string) => ({ name, kind: "blob", dataFormat: "csv", columns, connectionStrings: [connectionString] });

describe("file:// targets only under the operator's roots (SPEC §7)", () => {
  let sw: SpillwayUnderTest;
  let root: string;
  let outside: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "spillway-root-"));
    outside = mkdtempSync(join(tmpdir(), "spillway-outside-"));
    symlinkSync(outside, join(root, "escape"));
    sw = await startSpillwayProcesses("all", { SPILLWAY_FILE_TARGET_ROOTS: root });
  });
  afterAll(async () => {
    await sw?.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it("refuses /etc, /root, the data dir, '..', a symlink out of a root and relative URIs, naming the roots, and creates nothing", async () => {
    const targets = [
      "file:///etc/spillway",
      "file:///root/lake",
      `file://${sw.dataDir}`,
      `file://${sw.dataDir}/lake`,
      `file://${root}/../elsewhere`,
      `file://${root}/escape/lake`,
      "file://relative/lake",
      "file:lake",
      `file://${outside}`,
    ];
    for (const [i, target] of targets.entries()) {
      const err = await refusal(sw.catalog.createExternalTable(lakeAt(`Bad${i}`, target)));
      expect({ target, code: err.code }).toEqual({ target, code: ErrorCode.invalidArgument });
      expect(err.message, target).toMatch(new RegExp(`allowed.*: ${root}`));
    }
    expect((await sw.catalog.listExternalTables({})).externalTables).toEqual([]);
    expect(readdirSync(outside)).toEqual([]);
  });

  it("writes inside a root", async () => {
    mkdirSync(join(root, "lake"));
    await sw.catalog.createTable({ name: "Events", columns });
    await sw.catalog.createExternalTable(lakeAt("Lake", `file://${root}/lake/events`));
    await sw.catalog.createOrAlterContinuousExport({ name: "E", externalTable: "Lake", query: "SELECT Id FROM Events", queryLanguage: "sql", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2]]) });
    const run = await sw.catalog.runContinuousExportNow({ name: "E" });
    expect(run.result).toBe("Completed");
    expect(run.artifacts.map((a) => a.path)).toEqual([expect.stringContaining(`file://${root}/lake/events/`)]);
  });
});

describe("file:// targets with authentication on and no roots given", () => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;
  beforeAll(async () => {
    idp = await startIdentityProvider();
    sw = await startSpillwayProcesses("all", idp.env(["aaduser=root"]), undefined, { token: await idp.userToken("root") });
  });
  afterAll(async () => {
    await sw?.stop();
    await idp?.stop();
  });

  it("allows none, not even the OS temp folder, and says how to allow some", async () => {
    const err = await refusal(sw.catalog.createExternalTable(lakeAt("Lake", `file://${tmpdir()}/lake`)));
    expect(err.code).toBe(ErrorCode.invalidArgument);
    expect(err.message).toContain("SPILLWAY_FILE_TARGET_ROOTS");
  });
});
