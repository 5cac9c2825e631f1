import type { SpillwayConfig } from "@spillway/config";
import { QueryDescriber } from "@spillway/duck";
import { CatalogService } from "@spillway/proto";
import { catalogAccess } from "./access.js";
import { AuditLog } from "./audit-log.js";
import { Catalog } from "./catalog.js";
import { CatalogStore } from "./catalog-store.js";
import type { CatalogPeers } from "./peer-clients.js";
import { PrincipalRegistry } from "./principal-registry.js";
import { catalogHandlers } from "./service.js";

export async function createCatalogModule(config: SpillwayConfig, peers: CatalogPeers) {
  const store = await CatalogStore.open(config.dataDir, config.metadataUrl);
  // Export queries are checked here, from the tables' schemas: the catalog needs no query service.
  const describer = await QueryDescriber.open();
  const catalog = new Catalog(store, peers, { minIntervalMs: config.minIntervalMs, minSizeLimit: config.minSizeLimit }, {
    roots: config.fileTargetRoots,
    dataDir: config.dataDir,
  }, describer);
  const principals = new PrincipalRegistry(store, { admins: config.auth.clusterAdmins, viewers: config.auth.clusterViewers });
  return {
    service: CatalogService,
    handlers: catalogHandlers(catalog, principals, new AuditLog(store)),
    access: catalogAccess,
    async stop() {
      await store.close();
      await describer.close();
    },
  };
}
