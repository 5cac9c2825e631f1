import type { SpillwayConfig } from "@spillway/config";
import { CatalogService } from "@spillway/proto";
import { Catalog } from "./catalog.js";
import { CatalogStore } from "./catalog-store.js";
import type { CatalogPeers } from "./peer-clients.js";
import { catalogHandlers } from "./service.js";

export async function createCatalogModule(config: SpillwayConfig, peers: CatalogPeers) {
  const store = await CatalogStore.open(config.dataDir);
  const catalog = new Catalog(store, peers, { minIntervalMs: config.minIntervalMs, minSizeLimit: config.minSizeLimit });
  return {
    service: CatalogService,
    handlers: catalogHandlers(catalog),
    stop: () => store.close(),
  };
}
