import { mkdir } from "node:fs/promises";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceName, SpillwayConfig } from "@spillway/config";
import { CatalogService, CursorService, QueryService, WriterService } from "@spillway/proto";
import { createGrpcClient, createLocalClient, RpcServer, type AccessRule, type ServiceClient } from "@spillway/rpc";
import { createCatalogModule } from "../../catalog/src/index.js";
import { createCursorModule } from "../../cursor/src/index.js";
import { createQueryModule } from "../../query/src/index.js";
import { createWriterModule } from "../../writer/src/index.js";
import { announceAuth } from "./auth-announcement.js";
import { createCallGuard } from "./call-guard-factory.js";
import { loadInternalKey } from "./internal-key.js";

/** What every service module gives the registry. */
export interface ServiceModule {
  service: DescService;
  handlers: object;
  /** Who may call each RPC (the rpc server enforces it). */
  access: Record<string, AccessRule<never>>;
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
        const tls = config.tls && { ca: config.tls.peerCa, cert: config.tls.cert, key: config.tls.key };
        const remote = createGrpcClient(SERVICE_DESCRIPTORS[name], config.peers[name], { internalKey, tls });
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

  const guard = createCallGuard(config, () => clientOf("catalog"), log);
  const server = new RpcServer({ internalKey, guard, tls: config.tls && { cert: config.tls.cert, key: config.tls.key, clientCa: config.tls.clientCa } });
  for (const module of modules.values()) server.addService(module.service, module.handlers, module.access);
  const port = await server.listen(config.listen);
  for (const module of modules.values()) await module.start?.();
  log(`spillway: ${hostedNames.join(", ")} listening on ${config.listen.replace(/:0$/, `:${port}`)}${config.tls ? " (TLS)" : ""}, data in ${config.dataDir}`);
  const stopAnnouncing = announceAuth(config, log);
  if (config.tls && !config.tls.peerCa && hostedNames.length < 4) {
    log("spillway: TLS peers are checked against the system's root certificates: with a private CA, set SPILLWAY_TLS_CA (or SPILLWAY_TLS_CLIENT_CA) or calls between the services will fail");
  }

  return {
    port,
    async stop() {
      stopAnnouncing();
      await server.stop();
      for (const module of [...modules.values()].reverse()) await module.stop();
      remotes.forEach((r) => r.close());
    },
  };
}
