import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CatalogService, CursorService, Health, HealthCheckResponse_ServingStatus, KustoService, QueryService } from "@spillway/proto";
import { createGrpcClient, type GrpcClientOptions } from "@spillway/rpc";
import { DEPENDENCIES, MODULES } from "../../services/app/src/index.js";
import { waitFor } from "./free-port.js";
import { postgresDatabaseForTest } from "./postgres.js";

/**
 * The topologies a suite runs in: one process (`all`), one per module (`split`), or one
 * process keeping its catalog and cursor stores in PostgreSQL (`postgres`).
 */
export type Mode = "all" | "split" | "postgres";
// The processes of the split topology: one per module (the scheduler serves only health).
export const SERVICES = MODULES;
export type Service = (typeof SERVICES)[number];

/**
 * The split topology's processes in waves, leaves first: a process is spawned once every
 * service it calls (services/app/src/modules.ts) listens, so it is given their ports, which
 * they chose themselves (port 0) and reported.
 */
export function startWaves(): Service[][] {
  const depth = new Map<Service, number>();
  const depthOf = (s: Service): number => depth.get(s) ?? depth.set(s, 1 + Math.max(0, ...(DEPENDENCIES[s] as readonly Service[]).map(depthOf))).get(s)!;
  const waves: Service[][] = [];
  for (const s of SERVICES) (waves[depthOf(s) - 1] ??= []).push(s);
  return waves;
}

/**
 * What every Spillway process of a test shares: the data dir, the addresses of the services
 * known so far (a process spawned before a service it does not call is not told its
 * address), test-sized minimums.
 */
export function spillwayEnv(dataDir: string, addr: (service: Service) => string | undefined, extraEnv: Record<string, string>): NodeJS.ProcessEnv {
  const peers = { SPILLWAY_CATALOG_ADDR: addr("catalog"), SPILLWAY_QUERY_ADDR: addr("query"), SPILLWAY_CURSOR_ADDR: addr("cursor"), SPILLWAY_WRITER_ADDR: addr("writer") };
  const env: NodeJS.ProcessEnv = { ...process.env, SPILLWAY_DATA_DIR: dataDir, SPILLWAY_MIN_INTERVAL: "1s", SPILLWAY_MIN_SIZE_LIMIT: "1KB" };
  for (const [name, value] of Object.entries(peers)) if (value !== undefined) env[name] = value;
  return { ...env, ...extraEnv };
}

/** One Spillway process running `target` (all or a service) on `listen`, its output piped. */
export function spawnSpillway(target: string, listen: string, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = join(process.cwd(), "services/app/src/main.ts");
  const tsx = join(process.cwd(), "node_modules/tsx/dist/loader.mjs");
  return spawn(process.execPath, ["--import", tsx, entry, `--target=${target}`, `--listen=${listen}`], { env, stdio: ["ignore", "pipe", "pipe"] });
}

// What a Spillway process prints once it serves (services/app/src/spillway-app.ts), with the port it took.
const LISTENING = /listening on 127\.0\.0\.1:(\d+)/;

/**
 * Spawns one process on 127.0.0.1:`port`, 0 for a port the system picks (no port is chosen
 * before the process binds it, so two tests cannot race for one), and reports the port it
 * says it listens on. `listening` fails, with what the process said, if it exits first or
 * says nothing within `timeoutMs`; the child is returned at once so the caller can stop it.
 */
export function spawnListening(target: string, port: number, env: NodeJS.ProcessEnv, onOutput: (chunk: string) => void, timeoutMs = 60_000): { child: ChildProcess; listening: Promise<number> } {
  const child = spawnSpillway(target, `127.0.0.1:${port}`, env);
  let said = "";
  const listening = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`spillway ${target} did not say it listens within ${timeoutMs / 1000} s; it said:\n${said}`)), timeoutMs);
    const hear = (chunk: Buffer) => {
      const text = String(chunk);
      onOutput(text);
      if (said.length < 200_000) said += text;
      const heard = LISTENING.exec(said);
      if (heard) {
        clearTimeout(timer);
        resolve(Number(heard[1]));
      }
    };
    child.stdout!.on("data", hear);
    child.stderr!.on("data", hear);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`spillway ${target} exited (code ${code}, signal ${signal}) before it listened; it said:\n${said}`));
    });
  });
  // A rejection nobody awaits yet (the caller may be awaiting another process) is not an unhandled one.
  listening.catch(() => undefined);
  return { child, listening };
}

/** Waits until the process at `address` answers health SERVING; fails at once if `child` exits. */
export async function waitServing(target: string, address: string, child: ChildProcess, tls?: GrpcClientOptions["tls"], timeoutMs?: number): Promise<void> {
  const client = createGrpcClient(Health, address, { tls });
  try {
    await waitFor(
      `spillway ${target} health`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`spillway ${target} exited (code ${child.exitCode}, signal ${child.signalCode}) before serving`);
        const r = await client.check({ service: "" });
        return r.status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined;
      },
      timeoutMs,
    ).catch((err: Error) => {
      // An exit is final: say so rather than "timed out" with the last probe's error.
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`spillway ${target} exited (code ${child.exitCode}, signal ${child.signalCode}) before serving`);
      throw err;
    });
  } finally {
    client.close();
  }
}

export interface SpillwayUnderTest {
  dataDir: string;
  /** Where clients connect (the one process, or the catalog/query/kusto processes in split mode). */
  catalogAddress: string;
  queryAddress: string;
  kustoAddress: string;
  catalog: ReturnType<typeof createGrpcClient<typeof CatalogService>>;
  query: ReturnType<typeof createGrpcClient<typeof QueryService>>;
  cursor: ReturnType<typeof createGrpcClient<typeof CursorService>>;
  kusto: ReturnType<typeof createGrpcClient<typeof KustoService>>;
  output(): string;
  /** kill -9 of every process. */
  kill(): Promise<void>;
  /** Sends `signal` to every process (SIGSTOP pauses them, SIGCONT resumes them). */
  signal(signal: NodeJS.Signals): void;
  /** Starts the processes again, each on the port it took the first time (the clients dial those). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Spillway as real processes: one (`all`) or one per service (`split`), each on a port it
 * picked itself, sharing a data directory that outlives restarts.
 */
export async function startSpillwayProcesses(
  mode: Mode,
  extraEnv: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), "spillway-")),
  /** How the test's clients dial: TLS settings, a bearer token. */
  clientOptions: GrpcClientOptions = {},
): Promise<SpillwayUnderTest> {
  const ports = new Map<string, number>();
  const metadata = mode === "postgres" ? await postgresDatabaseForTest() : undefined;
  if (metadata) extraEnv = { ...extraEnv, SPILLWAY_METADATA_URL: metadata.url };
  const addr = (service: Service) => {
    const port = ports.get(mode === "split" ? service : "all");
    return port === undefined ? undefined : `127.0.0.1:${port}`;
  };
  let children: ChildProcess[] = [];
  let log = "";

  async function kill(): Promise<void> {
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => (c.once("exit", r), c.kill("SIGKILL"))))));
    children = [];
  }

  async function start(): Promise<void> {
    const waves: string[][] = mode === "split" ? startWaves() : [["all"]];
    const started: Array<{ target: string; child: ChildProcess }> = [];
    try {
      for (const wave of waves) {
        await Promise.all(
          wave.map(async (target) => {
            const env = spillwayEnv(dataDir, addr, extraEnv);
            const { child, listening } = spawnListening(target, ports.get(target) ?? 0, env, (d) => (log += d));
            children.push(child);
            started.push({ target, child });
            ports.set(target, await listening);
          }),
        );
      }
      for (const { target, child } of started) await waitServing(target, `127.0.0.1:${ports.get(target)}`, child, clientOptions.tls);
    } catch (err) {
      // A suite whose processes never came up fails here, with what they said, and leaves none running.
      await kill();
      throw new Error(`spillway (${mode}) did not start: ${(err as Error).message}\noutput:\n${log}`);
    }
  }

  try {
    await start();
    // The topology is what it says: no store fell back to a DuckDB file.
    const local = ["catalog.duckdb", "cursor.duckdb"].filter((f) => metadata && existsSync(join(dataDir, f)));
    if (local.length) throw new Error(`spillway (postgres) kept ${local.join(", ")} in its data dir`);
  } catch (err) {
    await kill();
    await metadata?.release();
    throw err;
  }
  const sut: SpillwayUnderTest = {
    dataDir,
    catalogAddress: addr("catalog")!,
    queryAddress: addr("query")!,
    kustoAddress: addr("kusto")!,
    catalog: createGrpcClient(CatalogService, addr("catalog")!, clientOptions),
    query: createGrpcClient(QueryService, addr("query")!, clientOptions),
    cursor: createGrpcClient(CursorService, addr("cursor")!, clientOptions),
    kusto: createGrpcClient(KustoService, addr("kusto")!, clientOptions),
    output: () => log,
    kill,
    signal: (signal) => children.forEach((c) => c.kill(signal)),
    start,
    async stop() {
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => (c.once("exit", r), c.kill("SIGTERM"))))));
      children = [];
      sut.catalog.close();
      sut.query.close();
      sut.cursor.close();
      sut.kusto.close();
      rmSync(dataDir, { recursive: true, force: true });
      await metadata?.release();
    },
  };
  return sut;
}
