import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse, type HTMLElement } from "node-html-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csv } from "../support/fixtures.js";
import { startIdentityProvider, type IdentityProvider } from "../support/identity-provider.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "../support/spillway-processes.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Where the test leaves its screenshots of the console, for people to look at. */
const SCREENSHOTS = join(process.cwd(), "test-artifacts");

/** The console's address, as the process said it at start. */
const consoleUrl = (sw: SpillwayUnderTest) => /console on (http:\/\/127\.0\.0\.1:\d+)\//.exec(sw.output())![1]!;

async function getJson(url: string, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.json() };
}

/** One HTTP request written as given on a socket: what comes back, or '' when the connection just closes. */
function rawRequest(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = connect(Number(port), hostname, () => socket.write(request));
    socket.on("data", (d) => (answer += d));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
    setTimeout(() => socket.end(), 1000);
  });
}

/** Headless Chromium (Debian's package) loads the page, runs its script, and prints the DOM it made. */
async function renderedDom(url: string): Promise<HTMLElement> {
  const { stdout } = await run("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000", "--dump-dom", url], { maxBuffer: 16 << 20 });
  return parse(stdout);
}

async function screenshot(url: string, file: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, file);
  rmSync(path, { force: true });
  await run("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=8000", "--window-size=1280,1100", `--screenshot=${path}`, url]);
  return path;
}

/** The text of each cell of a table's data rows. */
const cells = (table: HTMLElement) => table.querySelectorAll("tr").slice(1).map((tr) => tr.querySelectorAll("td").map((td) => td.text.trim()));

/**
 * Two exports: Out ran twice (7 records, then 5) and has 3 waiting; Broken's fact table had
 * its IngestionTime policy turned off, so its run failed.
 */
async function exportsWithHistory(sw: SpillwayUnderTest, lake: string): Promise<void> {
  await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
  await sw.catalog.createTable({ name: "Other", columns: [{ name: "Id", type: "long" }] });
  await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}/out`] });
  await sw.catalog.createExternalTable({ name: "OtherLake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}/other`] });
  const hourly = { intervalBetweenRuns: { seconds: 3600n } };
  await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: hourly });
  await sw.catalog.createOrAlterContinuousExport({ name: "Broken", externalTable: "OtherLake", query: "SELECT Id FROM Other", properties: hourly });
  await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2], [3], [4], [5], [6], [7]]) });
  await sleep(1100);
  expect((await sw.catalog.runContinuousExportNow({ name: "Out" })).result).toBe("Completed");
  await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[8], [9], [10], [11], [12]]) });
  await sleep(2100);
  expect((await sw.catalog.runContinuousExportNow({ name: "Out" })).result).toBe("Completed");
  await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[13], [14], [15]]) });
  await sw.catalog.setIngestionTimePolicy({ table: "Other", enabled: false });
  expect((await sw.catalog.runContinuousExportNow({ name: "Broken" })).result).toBe("Failed");
}

describe.each<Mode>(["all", "split"])("the console (%s)", (mode) => {
  let sw: SpillwayUnderTest;
  let lake: string;
  let url: string;

  beforeAll(async () => {
    lake = mkdtempSync(join(tmpdir(), "spillway-console-"));
    sw = await startSpillwayProcesses(mode);
    url = consoleUrl(sw);
    await exportsWithHistory(sw, lake);
  });
  afterAll(async () => {
    await sw?.stop();
    rmSync(lake, { recursive: true, force: true });
  });

  it("answers its data endpoints with every export's lateness, backlog and last result, the lateness runs ended, and recent failures", async () => {
    const { status, body } = await getJson(`${url}/api/overview`);
    expect(status).toBe(200);
    const byName = Object.fromEntries(body.exports.map((e: { name: string }) => [e.name, e]));
    expect(byName.Out).toMatchObject({ externalTable: "Lake", enabled: true, lastRunResult: "Completed", running: false, recordsWaiting: 3 });
    expect(byName.Out.latenessSeconds).toBeGreaterThan(0);
    expect(byName.Broken).toMatchObject({ lastRunResult: "Failed", recordsWaiting: 0 });
    // One point per run that exported records: the second run's oldest record had waited at least 2 s.
    expect(body.lateness.Out).toHaveLength(2);
    expect(body.lateness.Out[1][1]).toBeGreaterThanOrEqual(2);
    expect(body.lateness.Broken).toEqual([]);
    expect(body.failures).toEqual([expect.objectContaining({ export: "Broken", kind: "Failure", permanent: true, details: expect.stringContaining("IngestionTime policy off") })]);

    const page = await getJson(`${url}/api/export?name=Out`);
    expect(page.status).toBe(200);
    expect(page.body.runs.map((r: { run: number; rowsWritten: number; rowsRead: number }) => [r.run, r.rowsWritten, r.rowsRead])).toEqual([
      [2, 5, 5],
      [1, 7, 7],
    ]);
    expect(page.body.runs[0].cpuMs).toBeGreaterThan(0);
    expect(page.body.artifacts.map((a: { records: number }) => a.records)).toEqual([5, 7]);
  });

  it("refuses what is not a page: an unknown export (404), no name (400), a write (405)", async () => {
    expect(await getJson(`${url}/api/export?name=Nope`)).toEqual({ status: 404, body: { error: "continuous export 'Nope' does not exist in database 'default'" } });
    expect((await getJson(`${url}/api/export`)).status).toBe(400);
    expect((await fetch(`${url}/api/overview`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${url}/nowhere`)).status).toBe(404);
    // A request line no URL parser takes is a 400, and the process goes on.
    expect(await rawRequest(url, "GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${url}/api/overview`)).status).toBe(200);
    // Open on loopback: a request for another host name is a page elsewhere pointing its name here (DNS rebinding).
    expect(await rawRequest(url, "GET /api/overview HTTP/1.1\r\nHost: attacker.example:8080\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 421/);
    expect(await rawRequest(url, "GET /api/overview HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 200/);
  });

  it.runIf(mode === "all")("renders in headless Chromium: the tables with the right numbers, and the chart", async () => {
    const overview = await renderedDom(`${url}/`);
    expect(overview.querySelector("body")!.getAttribute("data-state")).toBe("ready");
    const rows = cells(overview.querySelector("#exports")!);
    const out = rows.find((r) => r[0] === "Out")!;
    // export, external table, state, last run, last run time, exported to, lateness, records waiting
    expect([out[1], out[2], out[3], out[7]]).toEqual(["Lake", "enabled", "Completed", "3"]);
    expect(rows.find((r) => r[0] === "Broken")![3]).toBe("Failed");
    expect(overview.querySelector("#export-count")!.text).toBe("2");
    const chart = overview.querySelector("#chart")!;
    expect(chart.getAttribute("data-points")).toBe("2");
    expect(chart.getAttribute("data-series")).toBe("Broken,Out");
    expect(chart.querySelector("canvas")).not.toBeNull();
    expect(cells(overview.querySelector("#failures")!)[0]!.slice(0, 4)).toEqual(["Broken", expect.any(String), "Failure", "yes"]);

    const page = await renderedDom(`${url}/export?name=Out`);
    expect(page.querySelector("body")!.getAttribute("data-state")).toBe("ready");
    const runs = cells(page.querySelector("#runs")!);
    // run, result, started, duration, lateness, rows read, rows written
    expect(runs.map((r) => [r[0], r[1], r[5], r[6]])).toEqual([
      ["2", "Completed", "5", "5"],
      ["1", "Completed", "7", "7"],
    ]);
    expect(cells(page.querySelector("#artifacts")!).map((r) => r[2])).toEqual(["5", "7"]);
    expect(page.querySelector("#chart")!.getAttribute("data-points")).toBe("2");

    for (const [path, file] of [["/", "console-overview.png"], ["/export?name=Out", "console-export.png"]]) {
      expect(statSync(await screenshot(`${url}${path}`, file)).size).toBeGreaterThan(10_000);
    }
  });
});

describe("the console with authentication on", () => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;

  beforeAll(async () => {
    idp = await startIdentityProvider();
    sw = await startSpillwayProcesses("all", idp.env(["aaduser=root"]));
  });
  afterAll(async () => {
    await sw?.stop();
    await idp?.stop();
  });

  it("serves the pages to anyone, but data only for a bearer token whose principal may monitor the database", async () => {
    const url = consoleUrl(sw);
    expect((await fetch(`${url}/`)).status).toBe(200);
    const none = await getJson(`${url}/api/overview`);
    expect(none.status).toBe(401);
    expect(none.body.error).toMatch(/token/i);
    const stranger = await getJson(`${url}/api/overview`, await idp.userToken("stranger"));
    expect(stranger).toEqual({ status: 403, body: { error: expect.stringContaining("aaduser=stranger may not call CatalogService/listContinuousExports on database 'default'") } });
    // An export's page needs the same: refused before the export is even looked up.
    expect(await getJson(`${url}/api/export?name=Any`, await idp.userToken("stranger"))).toEqual({ status: 403, body: { error: expect.stringContaining("may not call CatalogService/showContinuousExport") } });
    expect((await getJson(`${url}/api/export?name=Any`)).status).toBe(401);

    const root = await idp.userToken("root");
    const admin = (await import("@spillway/rpc")).createGrpcClient((await import("@spillway/proto")).CatalogService, sw.catalogAddress, { token: root });
    try {
      await admin.addDatabasePrincipals({ role: "monitors", principals: ["aaduser=watcher"] });
    } finally {
      admin.close();
    }
    const watcher = await getJson(`${url}/api/overview`, await idp.userToken("watcher"));
    expect(watcher).toMatchObject({ status: 200, body: { database: "default", exports: [] } });
    expect(await getJson(`${url}/api/export?name=Any`, await idp.userToken("watcher"))).toMatchObject({ status: 404 });
    // A token is never echoed back, and a bad one is refused like none.
    const forged = await getJson(`${url}/api/overview`, "not-a-token");
    expect(forged.status).toBe(401);
    expect(JSON.stringify(forged.body)).not.toContain("not-a-token");
  });
});
