import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { grpcurl } from "../../tools/grpcurl.js";
import { freePort } from "../support/free-port.js";

// The README's "Running the services as separate processes" block, run as written: each
// address it names is swapped for a free port and its data directory for a temporary one,
// then the quick start's calls go to the catalog it started.

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The first sh block after `heading`. */
function shBlock(heading: string): string {
  const section = README.slice(README.indexOf(heading));
  return /```sh\n([\s\S]*?)```/.exec(section)![1]!;
}

/** The quick start's grpcurl calls, as written (single-quoted JSON). */
function quickStartCalls(): Array<{ data: string; method: string }> {
  const section = README.slice(README.indexOf("## Quick start"), README.indexOf("## External tables"));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.replace(/\\\n/g, " ").split("\n"))
    .filter((line) => line.startsWith("grpcurl "))
    .map((line) => {
      const m = /^grpcurl -plaintext -d '([^']*)' 127\.0\.0\.1:50051 (\S+)$/.exec(line.trim())!;
      return { data: m[1]!, method: m[2]! };
    });
}

/** Whether any process of group `pgid` is left. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every process of group `pgid`: SIGTERM, then SIGKILL for what is left after 20 s; waits until none is. */
async function stopGroup(pgid: number): Promise<void> {
  if (!groupAlive(pgid)) return;
  process.kill(-pgid, "SIGTERM");
  const deadline = Date.now() + 20_000;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!groupAlive(pgid)) return;
  process.kill(-pgid, "SIGKILL");
  // Bounded: a killed process nobody reaps (no init in a container) stays in the group.
  const killed = Date.now() + 5_000;
  while (groupAlive(pgid) && Date.now() < killed) await new Promise((r) => setTimeout(r, 100));
}

describe("the README's services as separate processes", () => {
  const block = shBlock("### Running the services as separate processes");
  let dataDir: string;
  let lake: string;
  const ports = new Map<string, number>();
  let shell: ChildProcess | undefined;
  let said = "";
  const exited = () => shell!.exitCode !== null || shell!.signalCode !== null;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "spillway-readme-split-"));
    lake = mkdtempSync(join(tmpdir(), "spillway-readme-split-lake-"));
    // A free port for each address, all different, swapped in one pass (a new port may be one of the block's).
    for (const address of new Set(block.match(/127\.0\.0\.1:\d+/g))) {
      let port = await freePort();
      while ([...ports.values()].includes(port)) port = await freePort();
      ports.set(address, port);
    }
    const script = block.replaceAll("/var/lib/spillway", dataDir).replace(/127\.0\.0\.1:\d+/g, (address) => `127.0.0.1:${ports.get(address)}`);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SPILLWAY_")) env[k] = v;
    // Seven processes would each try the default metrics address; this test does not scrape them.
    env.SPILLWAY_METRICS_LISTEN = "off";
    // Its own process group, so that stopping it stops every service it started.
    shell = spawn("sh", ["-c", `${script}\nwait`], { cwd: fileURLToPath(new URL("../..", import.meta.url)), env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    shell.stdout!.on("data", (c) => (said += String(c)));
    shell.stderr!.on("data", (c) => (said += String(c)));
    for (const [address, port] of ports) {
      if (address.endsWith(":8080")) continue;
      const health = createGrpcClient(Health, `127.0.0.1:${port}`);
      try {
        const deadline = Date.now() + 90_000;
        for (;;) {
          if (exited()) throw new Error(`the block's shell ended (code ${shell.exitCode}, signal ${shell.signalCode}); it said:\n${said}`);
          const serving = await Promise.race([
            health.check({ service: "" }).then((r) => r.status === HealthCheckResponse_ServingStatus.SERVING, () => false),
            new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
          ]);
          if (serving) break;
          if (Date.now() > deadline) throw new Error(`${address} of the README block (port ${port}) did not serve within 90 s; the processes said:\n${said}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        health.close();
      }
    }
  }, 180_000);

  afterAll(async () => {
    if (shell?.pid !== undefined) await stopGroup(shell.pid);
    // The services write their stores as they stop: only then is the folder theirs no more.
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (lake) rmSync(lake, { recursive: true, force: true });
  }, 60_000);

  it("starts every service, each on the address it is given, and they serve the quick start together", async () => {
    expect([...ports.keys()]).toEqual(["127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053", "127.0.0.1:50054", "127.0.0.1:50055", "127.0.0.1:50056", "127.0.0.1:50057", "127.0.0.1:8080"]);
    // Each call goes to the process serving its service, where the block's exports say it is.
    const at = (service: string) => `127.0.0.1:${ports.get(new RegExp(`SPILLWAY_${service}_ADDR=(\\S+)`).exec(block)![1]!)}`;
    const results: Record<string, unknown[]> = {};
    for (const c of quickStartCalls()) {
      const address = c.method.includes(".query.v1.") ? at("QUERY") : at("CATALOG");
      results[c.method.split("/")[1]!] = await grpcurl(address, c.method, c.data.replaceAll("/tmp/spillway-quickstart", lake));
    }
    expect(Object.keys(results)).toEqual(["CreateTable", "CreateExternalTable", "CreateOrAlterContinuousExport", "Ingest", "RunContinuousExportNow", "ShowExportedArtifacts", "ShowContinuousExport", "Query"]);
    // The run went from the catalog to the scheduler, which ran it through the query service and the writer.
    expect(results.RunContinuousExportNow).toEqual([expect.objectContaining({ result: "Completed" })]);
    const [{ artifacts }] = results.ShowExportedArtifacts as Array<{ artifacts: Array<{ path: string; numRecords: string }> }>;
    expect(artifacts).toEqual([expect.objectContaining({ numRecords: "2" })]);
    expect(existsSync(fileURLToPath(artifacts[0]!.path))).toBe(true);
    // Each service keeps its own store in the one data directory.
    for (const store of ["catalog.duckdb", "cursor.duckdb"]) expect(existsSync(join(dataDir, store))).toBe(true);
    // The console, on its own HTTP address, reads the others.
    const console = `http://127.0.0.1:${ports.get("127.0.0.1:8080")}`;
    expect((await fetch(`${console}/`)).status).toBe(200);
    const overview = (await (await fetch(`${console}/api/overview`)).json()) as { exports: Array<{ name: string; lastRunResult: string }> };
    expect(overview.exports).toEqual([expect.objectContaining({ name: "EventsToLake", lastRunResult: "Completed" })]);
  });
});
