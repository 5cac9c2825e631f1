import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CatalogService, CursorService, Health, HealthCheckResponse_ServingStatus, QueryService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { freePort, waitFor } from "./free-port.js";
import { SERVICES, spawnSpillway, spillwayEnv, type Mode } from "./spillway-processes.js";

export const SPLIT_SERVICES = SERVICES;
export type ChaosTarget = "all" | (typeof SPLIT_SERVICES)[number];

export interface ProcessEvent {
  at: number;
  target: ChaosTarget;
  event: "started" | "healthy" | "killed" | "exited" | "stopped";
  detail?: string;
}

export interface ChaosSpillway {
  mode: Mode;
  dataDir: string;
  /** The processes of this mode: ["all"] or the four services. */
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
  const targets: readonly ChaosTarget[] = mode === "all" ? ["all"] : SPLIT_SERVICES;
  const ports = new Map<ChaosTarget, number>();
  for (const t of targets) ports.set(t, await freePort());
  const addr = (service: ChaosTarget) => `127.0.0.1:${ports.get(mode === "all" ? "all" : service)}`;
  const env = spillwayEnv(dataDir, addr, extraEnv);

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

  const spawnOne = (target: ChaosTarget) => {
    const child = spawnSpillway(target, addr(target), env);
    child.stdout!.on("data", (d) => append(target, String(d)));
    child.stderr!.on("data", (d) => append(target, String(d)));
    child.once("exit", (code, signal) => {
      if (children.get(target) === child) children.delete(target);
      const expected = intentional.has(child);
      events.push({ at: Date.now(), target, event: expected ? "stopped" : "exited", detail: `code ${code} signal ${signal}` });
      if (!expected) append(target, `(process exited on its own: code ${code} signal ${signal})`);
    });
    children.set(target, child);
    events.push({ at: Date.now(), target, event: "started", detail: `pid ${child.pid}` });
    return child;
  };

  const waitHealthy = async (target: ChaosTarget, child: ChildProcess) => {
    const client = createGrpcClient(Health, addr(target));
    try {
      await waitFor(
        `spillway ${target} health`,
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`${target} exited (code ${child.exitCode}, signal ${child.signalCode}); output:\n${sut.output(20_000)}`);
          }
          const r = await client.check({ service: "" });
          return r.status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined;
        },
        45_000,
      );
      events.push({ at: Date.now(), target, event: "healthy" });
    } finally {
      client.close();
    }
  };

  const terminate = (child: ChildProcess, signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      intentional.add(child);
      child.once("exit", () => resolve());
      child.kill(signal);
    });

  let cursorClient: ReturnType<typeof createGrpcClient<typeof CursorService>> | undefined;
  const sut: ChaosSpillway = {
    mode,
    dataDir,
    targets,
    catalog: createGrpcClient(CatalogService, addr("catalog")),
    query: createGrpcClient(QueryService, addr("query")),
    // Run counts come from the export ledger, which answers only Spillway's own services:
    // the test reads it as one, with the data dir's internal key (there once a process started).
    get cursor() {
      cursorClient ??= createGrpcClient(CursorService, addr("cursor"), { internalKey: readFileSync(join(dataDir, "internal.key"), "utf8").trim() });
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
      let child = children.get(target);
      if (!child) child = spawnOne(target);
      await waitHealthy(target, child);
    },
    async startAll() {
      const started = targets.filter((t) => !children.has(t)).map((t) => [t, spawnOne(t)] as const);
      // Services may wait on each other at start; all are spawned before any health wait.
      for (const [t, child] of started) await waitHealthy(t, child);
      for (const t of targets) if (!started.some(([s]) => s === t)) await waitHealthy(t, children.get(t)!);
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
      sut.catalog.close();
      sut.query.close();
      cursorClient?.close();
      if (!keepDataDir) rmSync(dataDir, { recursive: true, force: true });
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
