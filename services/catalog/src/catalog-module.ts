import type { SpillwayConfig } from "@spillway/config";
import { QueryDescriber } from "@spillway/duck";
import { redactSecrets } from "@spillway/errors";
import { CatalogService } from "@spillway/proto";
import { catalogAccess } from "./access.js";
import { AuditLog } from "./audit-log.js";
import { Catalog } from "./catalog.js";
import { CatalogStore } from "./catalog-store.js";
import { sweepLeftovers } from "./drop-leftovers.js";
import type { CatalogPeers } from "./peer-clients.js";
import { PrincipalRegistry } from "./principal-registry.js";
import { catalogHandlers } from "./service.js";

/** How often dropped exports' leftovers are looked for (drop-leftovers.ts), at most: every lease when leases are shorter. */
const SWEEP_LEFTOVERS_EVERY_MS = 60_000;

/**
 * How many leases after a drop its leftovers are swept: by then a run in flight has mostly
 * ended, or its node is gone. Should one still upload after the sweep (a node paused that
 * long), its refused commit removes its files by name (README "A node paused mid-run").
 */
const LEASES_BEFORE_SWEEPING = 4;

export async function createCatalogModule(config: SpillwayConfig, peers: CatalogPeers, options: { log?: (line: string) => void } = {}) {
  const store = await CatalogStore.open(config.dataDir, config.metadataUrl);
  // Export queries are checked here, from the tables' schemas: the catalog needs no query service.
  const describer = await QueryDescriber.open();
  const catalog = new Catalog(store, peers, { minIntervalMs: config.minIntervalMs, minSizeLimit: config.minSizeLimit }, {
    roots: config.fileTargetRoots,
    dataDir: config.dataDir,
  }, describer);
  const principals = new PrincipalRegistry(store, { admins: config.auth.clusterAdmins, viewers: config.auth.clusterViewers });
  let sweeping: Promise<unknown> | undefined;
  const sweep = () => {
    // A sweep slower than a minute is not joined by the next.
    if (sweeping) return;
    sweeping = sweepLeftovers(store, peers, Date.now(), LEASES_BEFORE_SWEEPING * config.runLeaseMs)
      .then(
        (outcome) => {
          if (outcome.removed) options.log?.(`catalog: removed ${outcome.removed} files that runs of dropped continuous exports had left`);
          for (const failure of outcome.failures) options.log?.(`catalog: ${failure}`);
        },
        (err: Error) => options.log?.(`catalog: could not look for files left by dropped continuous exports (${redactSecrets(err.message)}); trying again at the next look`),
      )
      .finally(() => (sweeping = undefined));
  };
  const timer = setInterval(sweep, Math.min(SWEEP_LEFTOVERS_EVERY_MS, config.runLeaseMs));
  timer.unref();
  return {
    service: CatalogService,
    handlers: catalogHandlers(catalog, principals, new AuditLog(store)),
    access: catalogAccess,
    async stop() {
      clearInterval(timer);
      await sweeping;
      await store.close();
      await describer.close();
    },
  };
}
