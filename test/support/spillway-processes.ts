import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CatalogService, CursorService, Health, HealthCheckResponse_ServingStatus, KustoService, QueryService } from "@spillway/proto";
import { createGrpcClient, type GrpcClientOptions } from "@spillway/rpc";
import { DEPENDENCIES, MODULES } from "../../services/app/src/index.js";
import { waitFor } from "./free-port.js";
import { sharedByNodes } from "./nodes-topology.js";

/**
 * The topologies a suite runs in: one process (`all`), one per module (`split`), or
 * identical nodes sharing PostgreSQL and an extent store in Azurite (`nodes`).
 */
export type Mode = "all" | "split" | "nodes";
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
  const env: NodeJS.ProcessEnv = { ...process.env, SPILLWAY_DATA_DIR: dataDir, SPILLWAY_MIN_INTERVAL: "1s", SPILLWAY_MIN_SIZE_LIMIT: "1KB", SPILLWAY_DROPPED_EXTENT_GRACE: "1s" };
  for (const [name, value] of Object.entries(peers)) if (value !== undefined) env[name] = value;
  return { ...env, ...extraEnv };
}

/** One Spillway process running `target` (all or a service) on `listen`, its output piped. */
export function spawnSpillway(target: string, listen: string, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = join(process.cwd(), "services/app/src/main.ts");
  const tsx = join(process.cwd(), "node_modules/tsx/dist/loader.mjs");
  // As `npm start` starts it: libuv's pool sized first (README "Configuration").
  const threadpool = join(process.cwd(), "services/app/uv-threadpool.cjs");
  // Many processes run at once: each scrape endpoint on a port of its own, unless the test says where.
  return spawn(process.execPath, ["--require", threadpool, "--import", tsx, entry, `--target=${target}`, `--listen=${listen}`], { env: { SPILLWAY_METRICS_LISTEN: "127.0.0.1:0", SPILLWAY_HTTP_LISTEN: "127.0.0.1:0", ...env }, stdio: ["ignore", "pipe", "pipe"] });
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
  /** The data dir of the (first) node. */
  dataDir: string;
  /** Every node's data dir (one, except in the `nodes` topology). */
  dataDirs: string[];
  /** Where clients connect (the one process, the catalog/query/kusto processes in split mode, or every node). */
  catalogAddress: string;
  queryAddress: string;
  kustoAddress: string;
  catalog: ReturnType<typeof createGrpcClient<typeof CatalogService>>;
  query: ReturnType<typeof createGrpcClient<typeof QueryService>>;
  /** The (first node's) cursor service. */
  cursor: ReturnType<typeof createGrpcClient<typeof CursorService>>;
  kusto: ReturnType<typeof createGrpcClient<typeof KustoService>>;
  /** The extent files of a table of the default database, wherever the topology keeps them. */
  extentFiles(table: string): Promise<string[]>;
  output(): string;
  /** kill -9 of every process. */
  kill(): Promise<void>;
  /** Sends `signal` to every process (SIGSTOP pauses them, SIGCONT resumes them). */
  signal(signal: NodeJS.Signals): void;
  /** Starts the processes again, each on the port it took the first time (the clients dial those). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Nodes of the `nodes` topology. */
export const NODE_COUNT = 3;

interface ProcessSpec {
  key: string;
  target: string;
  dataDir: string;
}

/**
 * Spillway as real processes, each on a port it picked itself, with data directories that
 * outlive restarts: one process (`all`), one per service (`split`), or
 * NODE_COUNT identical nodes on one PostgreSQL and an extent store in Azurite (`nodes`),
 * whose clients spread their calls over every node (round robin).
 */
export async function startSpillwayProcesses(
  mode: Mode,
  extraEnv: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), "spillway-")),
  /** How the test's clients dial: TLS settings, a bearer token. */
  clientOptions: GrpcClientOptions = {},
): Promise<SpillwayUnderTest> {
  const ports = new Map<string, number>();
  const shared = mode === "nodes" ? await sharedByNodes() : undefined;
  if (shared) extraEnv = { ...extraEnv, ...shared.env };
  const release = async () => await shared?.release();

  const processes: ProcessSpec[] =
    mode === "split"
      ? SERVICES.map((s) => ({ key: s, target: s, dataDir }))
      : mode === "nodes"
        ? Array.from({ length: NODE_COUNT }, (_, i) => ({ key: `node${i + 1}`, target: "all", dataDir: join(dataDir, `node${i + 1}`) }))
        : [{ key: "all", target: "all", dataDir }];
  const waves: ProcessSpec[][] = mode === "split" ? startWaves().map((wave) => wave.map((s) => processes.find((p) => p.key === s)!)) : [processes];
  const at = (key: string) => `127.0.0.1:${ports.get(key)}`;
  // Each node is every module: it calls its own services, so it is told no peers.
  const peerAddr = (service: Service) => (mode === "split" ? (ports.has(service) ? at(service) : undefined) : undefined);
  let children: ChildProcess[] = [];
  let log = "";

  async function kill(): Promise<void> {
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => (c.once("exit", r), c.kill("SIGKILL"))))));
    children = [];
  }

  async function start(): Promise<void> {
    const started: Array<{ spec: ProcessSpec; child: ChildProcess }> = [];
    try {
      for (const wave of waves) {
        await Promise.all(
          wave.map(async (spec) => {
            const env = spillwayEnv(spec.dataDir, peerAddr, extraEnv);
            const { child, listening } = spawnListening(spec.target, ports.get(spec.key) ?? 0, env, (d) => (log += mode === "nodes" ? prefixed(spec.key, d) : d));
            children.push(child);
            started.push({ spec, child });
            ports.set(spec.key, await listening);
          }),
        );
      }
      for (const { spec, child } of started) await waitServing(spec.target, at(spec.key), child, clientOptions.tls);
    } catch (err) {
      // A suite whose processes never came up fails here, with what they said, and leaves none running.
      await kill();
      throw new Error(`spillway (${mode}) did not start: ${(err as Error).message}\noutput:\n${log}`);
    }
  }

  try {
    await start();
    // The topology is what it says: no store fell back to a DuckDB file.
    const local = shared ? processes.flatMap((p) => ["catalog.duckdb", "cursor.duckdb"].filter((f) => existsSync(join(p.dataDir, f)))) : [];
    if (local.length) throw new Error(`spillway (${mode}) kept ${local.join(", ")} in a data dir`);
  } catch (err) {
    await kill();
    await release();
    throw err;
  }
  // In the nodes topology every client call goes to the next node (round robin), so a test
  // reads through one node what it wrote through another.
  const everyNode = `ipv4:${processes.map((p) => at(p.key)).join(",")}`;
  const serviceAddr = (service: Service) => (mode === "split" ? at(service) : mode === "nodes" ? everyNode : at("all"));
  const balanced = { ...clientOptions, roundRobin: mode === "nodes" };
  const sut: SpillwayUnderTest = {
    dataDir: processes[0]!.dataDir,
    dataDirs: [...new Set(processes.map((p) => p.dataDir))],
    catalogAddress: serviceAddr("catalog"),
    queryAddress: serviceAddr("query"),
    kustoAddress: serviceAddr("kusto"),
    catalog: createGrpcClient(CatalogService, serviceAddr("catalog"), balanced),
    query: createGrpcClient(QueryService, serviceAddr("query"), balanced),
    cursor: createGrpcClient(CursorService, mode === "nodes" ? at("node1") : serviceAddr("cursor"), clientOptions),
    kusto: createGrpcClient(KustoService, serviceAddr("kusto"), balanced),
    async extentFiles(table) {
      if (shared) return shared.extentFiles(table);
      return existsSync(join(dataDir, "extents/default", table)) ? readdirSync(join(dataDir, "extents/default", table)) : [];
    },
    output: () => log,
    kill,
    signal: (signal) => children.forEach((c) => c.kill(signal)),
    async start() {
      await start();
      if (mode !== "nodes") return;
      // A round-robin channel whose every node was down waits out its reconnect backoff: dial afresh.
      for (const client of [sut.catalog, sut.query, sut.kusto]) client.close();
      sut.catalog = createGrpcClient(CatalogService, everyNode, balanced);
      sut.query = createGrpcClient(QueryService, everyNode, balanced);
      sut.kusto = createGrpcClient(KustoService, everyNode, balanced);
    },
    async stop() {
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => (c.once("exit", r), c.kill("SIGTERM"))))));
      children = [];
      sut.catalog.close();
      sut.query.close();
      sut.cursor.close();
      sut.kusto.close();
      rmSync(dataDir, { recursive: true, force: true });
      await release();
    },
  };
  return sut;
}

const prefixed = (key: string, chunk: string) =>
  chunk
    .split("\n")
    .filter((l) => l.length)
    .map((l) => `[${key}] ${l}\n`)
    .join("");
