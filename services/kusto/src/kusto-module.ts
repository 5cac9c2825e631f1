import { sharedKqlEngine } from "@spillway/kql";
import { KustoService } from "@spillway/proto";
import { kustoAccess } from "./access.js";
import { KustoExecutor } from "./kusto-executor.js";
import type { CallAdmitter, KustoPeers, PeerAccess } from "./peer-clients.js";
import { ResultRenderer } from "./result-renderer.js";
import { kustoHandlers } from "./service.js";

export interface KustoModuleDeps {
  /** The access tables of the services commands run on. */
  access: PeerAccess;
  /** Admits each command as the RPC it runs as, for the Execute caller. */
  admitter: CallAdmitter;
}

/**
 * KustoService, the front door in Kusto's language (DESIGN "Kusto language"): depends on the
 * catalog and the query service, and nothing depends on it. Neither the parser (a worker of
 * some 200 MB) nor the renderer's DuckDB starts before the first Execute.
 */
export async function createKustoModule(peers: KustoPeers, deps: KustoModuleDeps) {
  let renderer: Promise<ResultRenderer> | undefined;
  const executor = new KustoExecutor({
    peers,
    access: deps.access,
    admitter: deps.admitter,
    kql: sharedKqlEngine,
    renderer: () =>
      (renderer ??= ResultRenderer.open().catch((err: unknown) => {
        // A failed start is tried again by the next call rather than kept.
        renderer = undefined;
        throw err;
      })),
  });
  return {
    service: KustoService,
    handlers: kustoHandlers(executor),
    access: kustoAccess,
    async stop() {
      const opened = await renderer?.catch(() => undefined);
      opened?.close();
    },
  };
}
