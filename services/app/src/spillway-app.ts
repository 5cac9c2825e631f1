import { mkdir } from "node:fs/promises";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceName, SpillwayConfig } from "@spillway/config";
import { CatalogService, CursorService, QueryService, WriterService } from "@spillway/proto";
import { createGrpcClient, createLocalClient, RpcServer, type ServiceClient } from "@spillway/rpc";
import { createCatalogModule } from "../../catalog/src/index.js";
import { createCursorModule } from "../../cursor/src/index.js";
import { createQueryModule } from "../../query/src/index.js";
import { createWriterModule } from "../../writer/src/index.js";
import { loadInternalKey } from "./internal-key.js";

/** What every service module gives the registry. */
export interface ServiceModule {
  service: DescService;
  handlers: object;
  /** Called once the server listens (e.g. to start the scheduler). */
  start?(): Promise<void>;
  stop(): Promise<void>;
}

export const SERVICE_DESCRIPTORS = {
  catalog: CatalogService,
  query: QueryService,
  cursor: CursorService,
  writer: WriterService,
} as const;

type Descriptors = typeof SERVICE_DESCRIPTORS;
export type Peers = { [K in ServiceName]: ServiceClient<Descriptors[K]> };

export interface RunningSpillway {
  port: number;
  stop(): Promise<void>;
}

/**
 * The module registry: hosts the target's services on one server. A service reaches
 * another only through its client interface, satisfied in-process when both are
 * hosted here (the `all` target) and over gRPC otherwise.
 */
export interface StartOptions {
  log?: (line: string) => void;
  /** In-process only: the clock the cursor service uses (tests of 7-day rules). */
  now?: () => number;
}

export async function startSpillway(config: SpillwayConfig, options: StartOptions = {}): Promise<RunningSpillway> {
  const log = options.log ?? console.log;
  await mkdir(config.dataDir, { recursive: true });
  const internalKey = await loadInternalKey(config.dataDir);
  const hostedNames: ServiceName[] = config.target === "all" ? ["catalog", "query", "cursor", "writer"] : [config.target];
  const modules = new Map<ServiceName, ServiceModule>();
  const remotes: Array<{ close(): void }> = [];

  const resolved = new Map<ServiceName, unknown>();
  const clientOf = <K extends ServiceName>(name: K): Peers[K] => {
    if (!resolved.has(name)) {
      const local = modules.get(name);
      if (local) {
        resolved.set(name, createLocalClient(SERVICE_DESCRIPTORS[name], local.handlers));
      } else {
        const remote = createGrpcClient(SERVICE_DESCRIPTORS[name], config.peers[name], { internalKey });
        remotes.push(remote);
        resolved.set(name, remote);
      }
    }
    return resolved.get(name) as Peers[K];
  };
  // Peers resolve on first use: in-process modules may depend on each other in a cycle.
  const peers = new Proxy({} as Peers, { get: (_, name) => clientOf(name as ServiceName) });

  const factories = {
    catalog: () => createCatalogModule(config, peers),
    query: () => createQueryModule(config, peers),
    cursor: () => createCursorModule(config, peers, log, { now: options.now }),
    writer: () => createWriterModule(config),
  } satisfies Record<ServiceName, () => Promise<ServiceModule>>;

  try {
    for (const name of hostedNames) modules.set(name, await factories[name]());
  } catch (err) {
    await Promise.allSettled([...modules.values()].map((m) => m.stop()));
    throw err;
  }

  const server = new RpcServer({ internalKey });
  for (const module of modules.values()) server.addService(module.service, module.handlers);
  const port = await server.listen(config.listen);
  for (const module of modules.values()) await module.start?.();
  log(`spillway: ${hostedNames.join(", ")} listening on ${config.listen.replace(/:0$/, `:${port}`)}, data in ${config.dataDir}`);

  return {
    port,
    async stop() {
      await server.stop();
      for (const module of [...modules.values()].reverse()) await module.stop();
      remotes.forEach((r) => r.close());
    },
  };
}
