import type { SpillwayConfig } from "@spillway/config";
import { queryAccess } from "./access.js";
import { QueryService } from "@spillway/proto";
import { ExtentCollector } from "./extent-collector.js";
import type { QueryPeers } from "./peer-clients.js";
import { QueryEngine } from "./query-engine.js";
import { queryHandlers } from "./service.js";

export async function createQueryModule(config: SpillwayConfig, peers: QueryPeers, log: (line: string) => void) {
  const engine = await QueryEngine.create(
    config.dataDir,
    { memoryLimit: config.limits.queryMemoryLimit, timeoutMs: config.limits.queryTimeoutMs },
    config.extentStore ? { location: config.extentStore, cacheBytes: config.extentCacheBytes } : undefined,
  );
  const collector = new ExtentCollector(peers.cursor, engine.extents, log);
  return {
    service: QueryService,
    handlers: queryHandlers(engine, peers, { maxPayloadBytes: config.maxIngestBytes, idleTimeoutMs: config.ingestIdleTimeoutMs }, {
      maxRows: config.limits.maxQueryResultRows,
      maxBytes: config.limits.maxQueryResultBytes,
    }, { roots: config.fileTargetRoots, dataDir: config.dataDir }),
    access: queryAccess,
    async start() {
      collector.start();
    },
    async stop() {
      await collector.stop();
      engine.close();
    },
  };
}
