import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CatalogService, CursorService, QueryService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { sharedByNodes } from "./nodes-topology.js";
import { NODE_COUNT, SERVICES, spawnListening, spillwayEnv, startWaves, waitServing, type Mode } from "./spillway-processes.js";

export const SPLIT_SERVICES = SERVICES;
export type ChaosTarget = "all" | (typeof SPLIT_SERVICES)[number] | `node${number}`;

export interface ProcessEvent {
  at: number;
  target: ChaosTarget;
  event: "started" | "healthy" | "killed" | "exited" | "stopped";
  detail?: string;
}

export interface ChaosSpillway {
  mode: Mode;
  dataDir: string;
  /** The processes of this mode: ["all"], the services, or the nodes (more once `addNode` ran). */
  targets: readonly ChaosTarget[];
  catalog: ReturnType<typeof createGrpcClient<typeof CatalogService>>;
  query: ReturnType<typeof createGrpcClient<typeof QueryService>>;
  cursor: ReturnType<typeof createGrpcClient<typeof CursorService>>;
  isRunning(target: ChaosTarget): boolean;
  /** kill -9 of one process (the whole server in `all` mode); waits until it is gone. */
  kill(target: ChaosTarget): Promise<void>;
  /** Starts one process (if not running) and waits until it serves health. */
  start(target: ChaosTarget): Promise<void>;
  /** Starts every process that is not running. */
  startAll(): Promise<void>;
  /** Nodes topology: starts one more node, which joins the others; its name. */
  addNode(): Promise<ChaosTarget>;
  /** Processes that exited without being killed or stopped by this helper. */
  unexpectedExits(): ProcessEvent[];
  events(): ProcessEvent[];
  /** The last `maxChars` of every process's output, each line prefixed with its target. */
  output(maxChars?: number): string;
  /** SIGTERM to every process (SIGKILL after `graceMs`), closes clients, removes the data dir unless kept. */
  stop(options?: { keepDataDir?: boolean; graceMs?: number }): Promise<void>;
}

/**
 * Spillway as real processes for chaos tests: like spillway-processes.ts, but each
 * process can be killed and restarted on its own, with its port and the shared data
 * directory kept across restarts.
 */
export async function startChaosSpillway(mode: Mode, extraEnv: Record<string, string> = {}): Promise<ChaosSpillway> {
  const dataDir = mkdtempSync(join(tmpdir(), "spillway-chaos-"));
  const targets: ChaosTarget[] = mode === "split" ? [...SPLIT_SERVICES] : mode === "nodes" ? Array.from({ length: NODE_COUNT }, (_, i) => `node${i + 1}` as const) : ["all"];
  const shared = mode === "nodes" ? await sharedByNodes() : undefined;
  // Runs of two extents or more split over the live nodes: a node killed may own a split run, or export a part of one.
  if (shared) extraEnv = { SPILLWAY_DISTRIBUTED_MIN_SIZE: "1", ...extraEnv, ...shared.env };
  // A row-wise run that stays on one node reads a few extents a slice (--run-slice-size): kills and faults land between slices too.
  extraEnv = { SPILLWAY_RUN_SLICE_SIZE: "4KB", ...extraEnv };
  const isNode = (target: ChaosTarget) => target.startsWith("node");
  // Each process picks its port the first time it starts (port 0) and keeps it on restarts.
  const ports = new Map<ChaosTarget, number>();
  const addr = (service: ChaosTarget) => {
    const port = ports.get(mode === "split" ? service : mode === "nodes" ? "node1" : "all");
    return port === undefined ? undefined : `127.0.0.1:${port}`;
  };
  // Clients of the nodes topology spread their calls over the first nodes (round robin), skipping those that are down.
  const clientAddr = (service: ChaosTarget) => (mode === "nodes" ? `ipv4:${targets.map((t) => `127.0.0.1:${ports.get(t)}`).join(",")}` : addr(service)!);
  const dataDirOf = (target: ChaosTarget) => (isNode(target) ? join(dataDir, target) : dataDir);

  const children = new Map<ChaosTarget, ChildProcess>();
  const intentional = new WeakSet<ChildProcess>();
  const events: ProcessEvent[] = [];
  const logLimit = 2_000_000;
  let log = "";
  const append = (target: ChaosTarget, chunk: string) => {
    log += chunk
      .split("\n")
      .filter((l) => l.length)
      .map((l) => `[${target}] ${l}\n`)
      .join("");
    if (log.length > logLimit) log = log.slice(log.length - logLimit / 2);
  };

  /** Spawns `target` on its port (0 the first time) and resolves once it listens. */
  const spawnOne = async (target: ChaosTarget): Promise<ChildProcess> => {
    const env = isNode(target) ? spillwayEnv(dataDirOf(target), () => undefined, extraEnv) : spillwayEnv(dataDir, addr, extraEnv);
    const { child, listening } = spawnListening(isNode(target) ? "all" : target, ports.get(target) ?? 0, env, (d) => append(target, d), 45_000);
    child.once("exit", (code, signal) => {
      if (children.get(target) === child) children.delete(target);
      const expected = intentional.has(child);
      events.push({ at: Date.now(), target, event: expected ? "stopped" : "exited", detail: `code ${code} signal ${signal}` });
      if (!expected) append(target, `(process exited on its own: code ${code} signal ${signal})`);
    });
    children.set(target, child);
    events.push({ at: Date.now(), target, event: "started", detail: `pid ${child.pid}` });
    ports.set(target, await listening);
    return child;
  };

  const waitHealthy = async (target: ChaosTarget, child: ChildProcess) => {
    try {
      await waitServing(target, `127.0.0.1:${ports.get(target)}`, child, undefined, 45_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; output:\n${sut.output(20_000)}`);
    }
    events.push({ at: Date.now(), target, event: "healthy" });
  };

  const terminate = (child: ChildProcess, signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      intentional.add(child);
      child.once("exit", () => resolve());
      child.kill(signal);
    });

  let catalogClient: ReturnType<typeof createGrpcClient<typeof CatalogService>> | undefined;
  let queryClient: ReturnType<typeof createGrpcClient<typeof QueryService>> | undefined;
  let cursorClient: ReturnType<typeof createGrpcClient<typeof CursorService>> | undefined;
  const sut: ChaosSpillway = {
    mode,
    dataDir,
    targets,
    // Made on first use: the ports are known once the processes have started.
    get catalog() {
      catalogClient ??= createGrpcClient(CatalogService, clientAddr("catalog"), { roundRobin: mode === "nodes" });
      return catalogClient;
    },
    get query() {
      queryClient ??= createGrpcClient(QueryService, clientAddr("query"), { roundRobin: mode === "nodes" });
      return queryClient;
    },
    // Run counts come from the export ledger, which answers only Spillway's own services:
    // the test reads it as one, with the data dir's internal key (there once a process started);
    // in the nodes topology, node1's.
    get cursor() {
      cursorClient ??= createGrpcClient(CursorService, addr("cursor")!, { internalKey: readFileSync(join(dataDirOf(mode === "nodes" ? "node1" : "all"), "internal.key"), "utf8").trim() });
      return cursorClient;
    },
    isRunning: (target) => children.has(target),
    async kill(target) {
      const child = children.get(target);
      if (!child) return;
      await terminate(child, "SIGKILL");
      events.push({ at: Date.now(), target, event: "killed", detail: `pid ${child.pid}` });
    },
    async start(target) {
      if (!targets.includes(target)) throw new Error(`no process '${target}' in mode ${mode}`);
      const child = children.get(target) ?? (await spawnOne(target));
      await waitHealthy(target, child);
    },
    async startAll() {
      // Leaves first: a process is spawned knowing the ports of those it calls.
      const waves: ChaosTarget[][] = mode === "split" ? startWaves() : [targets.slice()];
      for (const wave of waves) await Promise.all(wave.filter((t) => !children.has(t)).map(spawnOne));
      for (const t of targets) {
        const child = children.get(t);
        if (!child) throw new Error(`spillway ${t} exited after it listened; output:\n${sut.output(20_000)}`);
        await waitHealthy(t, child);
      }
    },
    async addNode() {
      if (mode !== "nodes") throw new Error(`no nodes to add to in mode ${mode}`);
      const node = `node${targets.length + 1}` as const;
      targets.push(node);
      await sut.start(node);
      return node;
    },
    unexpectedExits: () => events.filter((e) => e.event === "exited"),
    events: () => [...events],
    output: (maxChars = 200_000) => (log.length > maxChars ? log.slice(log.length - maxChars) : log),
    async stop({ keepDataDir = false, graceMs = 15_000 } = {}) {
      const running = [...children.values()];
      await Promise.all(
        running.map(async (child) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          await terminate(child, "SIGTERM");
          clearTimeout(timer);
        }),
      );
      children.clear();
      catalogClient?.close();
      queryClient?.close();
      cursorClient?.close();
      if (!keepDataDir) rmSync(dataDir, { recursive: true, force: true });
      await shared?.release();
    },
  };
  try {
    await sut.startAll();
  } catch (err) {
    await sut.stop();
    throw err;
  }
  return sut;
}
