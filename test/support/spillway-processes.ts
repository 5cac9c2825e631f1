import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CatalogService, CursorService, Health, HealthCheckResponse_ServingStatus, KustoService, QueryService } from "@spillway/proto";
import { createGrpcClient, type GrpcClientOptions } from "@spillway/rpc";
import { freePort, waitFor } from "./free-port.js";

export type Mode = "all" | "split";
// The processes of the split topology: one per module (the scheduler serves only health).
export const SERVICES = ["catalog", "query", "cursor", "writer", "scheduler", "kusto"] as const;

/** What every Spillway process of a test shares: the data dir, each service's address, test-sized minimums. */
export function spillwayEnv(dataDir: string, addr: (service: (typeof SERVICES)[number]) => string, extraEnv: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SPILLWAY_DATA_DIR: dataDir,
    SPILLWAY_MIN_INTERVAL: "1s",
    SPILLWAY_MIN_SIZE_LIMIT: "1KB",
    SPILLWAY_CATALOG_ADDR: addr("catalog"),
    SPILLWAY_QUERY_ADDR: addr("query"),
    SPILLWAY_CURSOR_ADDR: addr("cursor"),
    SPILLWAY_WRITER_ADDR: addr("writer"),
    ...extraEnv,
  };
}

/** One Spillway process running `target` (all or a service) on `listen`, its output piped. */
export function spawnSpillway(target: string, listen: string, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = join(process.cwd(), "services/app/src/main.ts");
  const tsx = join(process.cwd(), "node_modules/tsx/dist/loader.mjs");
  return spawn(process.execPath, ["--import", tsx, entry, `--target=${target}`, `--listen=${listen}`], { env, stdio: ["ignore", "pipe", "pipe"] });
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
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Spillway as real processes: one (`all`) or one per service (`split`), on free
 * ports, sharing a data directory that outlives restarts.
 */
export async function startSpillwayProcesses(
  mode: Mode,
  extraEnv: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), "spillway-")),
  /** How the test's clients dial: TLS settings, a bearer token. */
  clientOptions: GrpcClientOptions = {},
): Promise<SpillwayUnderTest> {
  const ports = mode === "all" ? { all: await freePort() } : Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()])));
  const addr = (service: string) => `127.0.0.1:${mode === "all" ? ports.all : ports[service]}`;
  let children: ChildProcess[] = [];
  let log = "";
  const env = spillwayEnv(dataDir, addr, extraEnv);

  const spawnOne = (target: string) => {
    const child = spawnSpillway(target, addr(target === "all" ? "catalog" : target), env);
    child.stdout!.on("data", (d) => (log += d));
    child.stderr!.on("data", (d) => (log += d));
    return child;
  };

  const health = (address: string) => createGrpcClient(Health, address, { tls: clientOptions.tls });
  const sut: SpillwayUnderTest = {
    dataDir,
    catalogAddress: addr("catalog"),
    queryAddress: addr("query"),
    kustoAddress: addr("kusto"),
    catalog: createGrpcClient(CatalogService, addr("catalog"), clientOptions),
    query: createGrpcClient(QueryService, addr("query"), clientOptions),
    cursor: createGrpcClient(CursorService, addr("cursor"), clientOptions),
    kusto: createGrpcClient(KustoService, addr("kusto"), clientOptions),
    output: () => log,
    async start() {
      children = mode === "all" ? [spawnOne("all")] : SERVICES.map(spawnOne);
      const targets = mode === "all" ? ["all"] : [...SERVICES];
      try {
        for (const target of targets) {
          const client = health(addr(target === "all" ? "catalog" : target));
          try {
            const exited = await waitFor(`spillway ${target} health`, async () => {
              const gone = children.find((c) => c.exitCode !== null);
              if (gone) return gone;
              const r = await client.check({ service: "" });
              return r.status === HealthCheckResponse_ServingStatus.SERVING ? null : undefined;
            });
            if (exited) throw new Error(`a spillway process exited with code ${exited.exitCode} before serving`);
          } finally {
            client.close();
          }
        }
      } catch (err) {
        // A suite whose processes never came up fails here, with what they said, and leaves none running.
        await sut.kill();
        throw new Error(`spillway (${mode}) did not start: ${(err as Error).message}\noutput:\n${log}`);
      }
    },
    async kill() {
      await Promise.all(
        children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => (c.once("exit", r), c.kill("SIGKILL"))))),
      );
      children = [];
    },
    async stop() {
      await Promise.all(
        children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => (c.once("exit", r), c.kill("SIGTERM"))))),
      );
      children = [];
      sut.catalog.close();
      sut.query.close();
      sut.cursor.close();
      sut.kusto.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await sut.start();
  return sut;
}
