import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CatalogService, Health, HealthCheckResponse_ServingStatus, KustoService, QueryService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { startAzurite as startTestAzurite, type Azurite as TestAzurite } from "../../test/support/azurite.js";
import { stopChild } from "../../test/support/child-process.js";
import { freePort, waitFor } from "../../test/support/free-port.js";
import { REPO_ROOT } from "./settings.js";

export { freePort } from "../../test/support/free-port.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Azurite extends TestAzurite {
  pid: number;
  createContainer(name: string): Promise<void>;
  deleteContainer(name: string): Promise<void>;
}

/** Azurite's blob service from node_modules, on a free port, storing under `location`. */
export async function startAzurite(location: string): Promise<Azurite> {
  const azurite = await startTestAzurite(location);
  return {
    ...azurite,
    async createContainer(name) {
      await azurite.client.getContainerClient(name).createIfNotExists();
    },
    async deleteContainer(name) {
      await azurite.client.getContainerClient(name).deleteIfExists();
    },
  };
}

export type CatalogClient = ReturnType<typeof createGrpcClient<typeof CatalogService>>;
export type QueryClient = ReturnType<typeof createGrpcClient<typeof QueryService>>;
export type KustoClient = ReturnType<typeof createGrpcClient<typeof KustoService>>;

export interface Spillway {
  name: string;
  pid: number;
  address: string;
  dataDir: string;
  catalog: CatalogClient;
  query: QueryClient;
  kusto: KustoClient;
  /** Everything the process printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface SpillwayOptions {
  /** Label of this instance (used for its data dir and log). */
  name: string;
  workDir: string;
  /** OTLP/HTTP endpoint to send spans to (JSON). */
  otlpUrl?: string;
  /** Directory for `node --cpu-prof` profiles. */
  cpuProfDir?: string;
  env?: Record<string, string>;
  /** The checkout to run Spillway from (its own node_modules): another commit's, to compare two side by side. This repository's by default. */
  root?: string;
}

/**
 * Spillway as a user starts it (what `npm start` runs: `node --require
 * ./services/app/uv-threadpool.cjs --import tsx services/app/src/main.ts`) on a free port of
 * 127.0.0.1, a fresh data directory, short minimum interval and size limit.
 */
export async function startSpillway(options: SpillwayOptions): Promise<Spillway> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const dataDir = join(options.workDir, `spillway-${options.name}`);
  mkdirSync(dataDir, { recursive: true });
  const logPath = join(options.workDir, `spillway-${options.name}.log`);
  const log = createWriteStream(logPath);

  // The caller's own Spillway and OTEL settings must not leak into the instance under test.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("SPILLWAY_") && !k.startsWith("OTEL_")) env[k] = v;
  Object.assign(env, {
    SPILLWAY_MIN_INTERVAL: "1s",
    SPILLWAY_MIN_SIZE_LIMIT: "1MB",
    // Several instances may run at once: each scrape endpoint on a port of its own.
    SPILLWAY_METRICS_LISTEN: "127.0.0.1:0",
    SPILLWAY_HTTP_LISTEN: "127.0.0.1:0",
    // Untraced, it is as `npm start` leaves it: spans made, sent nowhere.
    ...(options.otlpUrl
      ? { OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpUrl, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "500", OTEL_BSP_MAX_QUEUE_SIZE: "65536", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "2048" }
      : {}),
    ...options.env,
  });
  // As `npm start` starts it: libuv's pool sized first (README "Configuration").
  const nodeArgs = ["--require", "./services/app/uv-threadpool.cjs", "--import", "tsx"];
  if (options.cpuProfDir) {
    // No fixed file name: tsx's loader thread writes a profile too, and must not overwrite the main thread's.
    const dir = join(options.cpuProfDir, `spillway-${options.name}`);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
  }
  const child = spawn(process.execPath, [...nodeArgs, "services/app/src/main.ts", `--listen=${address}`, `--data-dir=${dataDir}`], {
    cwd: options.root ?? REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const output = () => {
    try {
      return readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };

  const health = createGrpcClient(Health, address);
  try {
    await waitFor(`spillway ${options.name} to serve`, async () => {
      if (child.exitCode !== null) throw new Error(`spillway exited with ${child.exitCode}:\n${output()}`);
      const r = await health.check({ service: "" });
      return r.status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined;
    }, 60_000);
  } catch (err) {
    await stopChild(child);
    throw err;
  } finally {
    health.close();
  }
  const catalog = createGrpcClient(CatalogService, address);
  const query = createGrpcClient(QueryService, address);
  const kusto = createGrpcClient(KustoService, address);
  return {
    name: options.name,
    pid: child.pid!,
    address,
    dataDir,
    catalog,
    query,
    kusto,
    output,
    async stop() {
      catalog.close();
      query.close();
      kusto.close();
      await stopChild(child);
      log.end();
    },
  };
}
