import type { SpillwayConfig } from "@spillway/config";
import { queryAccess } from "./access.js";
import { QueryService } from "@spillway/proto";
import type { QueryPeers } from "./peer-clients.js";
import { QueryEngine } from "./query-engine.js";
import { queryHandlers } from "./service.js";

export async function createQueryModule(config: SpillwayConfig, peers: QueryPeers) {
  const engine = await QueryEngine.create(config.dataDir, { memoryLimit: config.limits.queryMemoryLimit, timeoutMs: config.limits.queryTimeoutMs });
  return {
    service: QueryService,
    handlers: queryHandlers(engine, peers, { maxPayloadBytes: config.maxIngestBytes, idleTimeoutMs: config.ingestIdleTimeoutMs }, {
      maxRows: config.limits.maxQueryResultRows,
      maxBytes: config.limits.maxQueryResultBytes,
    }),
    access: queryAccess,
    stop: async () => engine.close(),
  };
}
