import { hostname } from "node:os";
import { mkdir } from "node:fs/promises";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceName, SpillwayConfig } from "@spillway/config";
import { closeSharedKqlEngine } from "@spillway/kql";
import { CatalogService, CursorService, QueryService, WriterService } from "@spillway/proto";
import { createGrpcClient, createLocalClient, RpcServer, type AccessRule, type ServiceClient } from "@spillway/rpc";
import { catalogAccess, createCatalogModule } from "../../catalog/src/index.js";
import { createConsoleModule } from "../../console/src/index.js";
import { createCursorModule } from "../../cursor/src/index.js";
import { createKustoModule } from "../../kusto/src/index.js";
import { createQueryModule, queryAccess } from "../../query/src/index.js";
import { createSchedulerModule } from "../../scheduler/src/index.js";
import { createWriterModule } from "../../writer/src/index.js";
import { announceAuth } from "./auth-announcement.js";
import { createCallGuard, createCommandAdmitter } from "./call-guard-factory.js";
import { loadInternalKey } from "./internal-key.js";
import { DEPENDENCIES, MODULES, modulesOf, type ModuleName } from "./modules.js";

/** What a module gives the registry: a service to serve, when it has one, and its life cycle. */
export interface StartedModule {
  service?: DescService;
  handlers?: object;
  /** Who may call each RPC (the rpc server enforces it). */
  access?: Record<string, AccessRule<never>>;
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
type Client<K extends ServiceName> = ServiceClient<Descriptors[K]>;
/** The clients of a module's dependencies, and nothing else. */
type PeersOf<M extends ModuleName> = { [K in (typeof DEPENDENCIES)[M][number]]: Client<K> };

export interface RunningSpillway {
  port: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: (line: string) => void;
  /** In-process only: the clock the cursor service and the scheduler use (tests of 7-day rules). */
  now?: () => number;
}

/**
 * The module registry: runs the target's modules, leaves first, each given clients of
 * exactly the services it depends on (modules.ts): in-process when that service runs here,
 * over gRPC otherwise. The services run here share one server.
 */
export async function startSpillway(config: SpillwayConfig, options: StartOptions = {}): Promise<RunningSpillway> {
  const log = options.log ?? console.log;
  await mkdir(config.dataDir, { recursive: true });
  const internalKey = await loadInternalKey(config.dataDir, config.metadataUrl);
  let listeningPort = 0;
  /** A client of `service` at `address`, as one Spillway service dials another (the internal key, TLS to peers). */
  const dial = <K extends ServiceName>(service: K, address: string) =>
    createGrpcClient(SERVICE_DESCRIPTORS[service], address, { internalKey, tls: config.tls && { ca: config.tls.peerCa, cert: config.tls.cert, key: config.tls.key } });
  const hosted = modulesOf(config.target);
  const modules = new Map<ModuleName, StartedModule>();
  // Every call guard of the process, drained as it stops.
  const guards: Array<{ drain(): Promise<void> }> = [];
  const drained = <G extends { drain(): Promise<void> }>(guard: G): G => (guards.push(guard), guard);
  const remotes: Array<{ close(): void }> = [];

  const clients = new Map<ServiceName, unknown>();
  const clientOf = <K extends ServiceName>(name: K): Client<K> => {
    if (!clients.has(name)) {
      const local = modules.get(name);
      if (local?.handlers) {
        clients.set(name, createLocalClient(SERVICE_DESCRIPTORS[name], local.handlers));
      } else if (hosted.includes(name)) {
        // The order of MODULES puts every dependency first: reaching here is a bug in it.
        throw new Error(`module ${name} is used before it has started`);
      } else {
        const remote = dial(name, config.peers[name]);
        remotes.push(remote);
        clients.set(name, remote);
      }
    }
    return clients.get(name) as Client<K>;
  };
  const peersOf = <M extends ModuleName>(module: M): PeersOf<M> =>
    Object.fromEntries(DEPENDENCIES[module].map((name) => [name, clientOf(name)])) as PeersOf<M>;

  const factories: { [M in ModuleName]: () => Promise<StartedModule> } = {
    cursor: () => createCursorModule(config, { now: options.now, log }),
    writer: () => createWriterModule(config),
    catalog: () => createCatalogModule(config, peersOf("catalog"), { log }),
    query: () => createQueryModule(config, peersOf("query"), log),
    scheduler: () =>
      createSchedulerModule(config, peersOf("scheduler"), log, {
        now: options.now,
        // A node (every module in one process) on shared metadata and extents runs parts of other nodes' runs.
        node:
          config.metadataUrl && config.extentStore && config.target === "all"
            ? {
                address: () => advertisedAddress(config, listeningPort),
                dial: (service, address) => dial(service, address) as never,
              }
            : undefined,
      }),
    // A command needs what the RPC it runs as needs: the rules are those services' own tables.
    kusto: () =>
      createKustoModule(peersOf("kusto"), {
        access: { catalog: catalogAccess, query: queryAccess },
        admitter: drained(createCommandAdmitter(config, () => clientOf("catalog"), log)),
      }),
    // Its pages are read as the RPCs they read through, for the request's bearer token.
    console: () => createConsoleModule(config, peersOf("console"), { guard: drained(createCallGuard(config, () => clientOf("catalog"), log)), catalogAccess, log }),
  };

  try {
    for (const name of MODULES.filter((m) => hosted.includes(m))) modules.set(name, await factories[name]());
  } catch (err) {
    await Promise.allSettled([...modules.values()].map((m) => m.stop()));
    throw err;
  }

  const guard = drained(createCallGuard(config, () => clientOf("catalog"), log));
  const server = new RpcServer({ internalKey, guard, tls: config.tls && { cert: config.tls.cert, key: config.tls.key, clientCa: config.tls.clientCa } });
  for (const module of modules.values()) {
    if (module.service && module.handlers && module.access) server.addService(module.service, module.handlers, module.access);
  }
  const port = await server.listen(config.listen);
  listeningPort = port;
  for (const module of modules.values()) await module.start?.();
  log(`spillway: ${hosted.join(", ")} listening on ${config.listen.replace(/:0$/, `:${port}`)}${config.tls ? " (TLS)" : ""}, data in ${config.dataDir}`);
  const stopAnnouncing = announceAuth(config, log);
  if (config.tls && !config.tls.peerCa && hosted.length < MODULES.length) {
    log("spillway: TLS peers are checked against the system's root certificates: with a private CA, set SPILLWAY_TLS_CA (or SPILLWAY_TLS_CLIENT_CA) or calls between the services will fail");
  }

  return {
    port,
    async stop() {
      stopAnnouncing();
      // The scheduler first: runs in flight end while the services they use still answer;
      // then the server, so no call arrives at a service that has stopped.
      const stopping = [...modules.values()].reverse();
      for (const module of stopping.filter((m) => !m.service)) await module.stop();
      await server.stop();
      // The outcomes of the last calls are still on their way to the audit log (CallGuard).
      await Promise.all(guards.map((g) => g.drain()));
      for (const module of stopping.filter((m) => m.service)) await module.stop();
      // The parser's worker, if a KQL text ever started it (libs/kql shared-engine.ts).
      await closeSharedKqlEngine();
      remotes.forEach((r) => r.close());
    },
  };
}

/** Where other nodes reach this one: SPILLWAY_ADVERTISE_ADDR, else the listen address (the host name for every interface). */
function advertisedAddress(config: SpillwayConfig, port: number): string {
  if (config.advertiseAddr) return config.advertiseAddr;
  const host = config.listen.slice(0, config.listen.lastIndexOf(":"));
  return `${host === "0.0.0.0" || host === "::" || host === "[::]" ? hostname() : host}:${port}`;
}
