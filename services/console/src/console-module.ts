import type { SpillwayConfig } from "@spillway/config";
import type { CatalogService } from "@spillway/proto";
import type { AccessTable } from "@spillway/rpc";
import { ConsoleData } from "./console-data.js";
import { ConsoleServer, type ConsoleGuard } from "./console-server.js";
import type { ConsolePeers } from "./peer-clients.js";

export interface ConsoleModuleDeps {
  /** Admits each data request for its bearer token, as the server admits RPCs. */
  guard: ConsoleGuard;
  /** The catalog's access table: a page needs what the RPCs it reads through need. */
  catalogAccess: AccessTable<typeof CatalogService>;
  log: (line: string) => void;
}

/**
 * The console (README "Console"): read-only pages over HTTP at SPILLWAY_HTTP_LISTEN. It reads
 * the catalog and the export ledger and serves no RPC; nothing depends on it. A console
 * that cannot take its address is said so in the log, and the rest of Spillway goes on.
 */
export async function createConsoleModule(config: SpillwayConfig, peers: ConsolePeers, deps: ConsoleModuleDeps) {
  const server = new ConsoleServer(new ConsoleData(peers), deps.guard, deps.catalogAccess, {
    tls: config.tls && { cert: config.tls.cert, key: config.tls.key },
    loopbackHostsOnly: config.auth.mode === "open",
  });
  return {
    async start() {
      const listen = config.httpListen;
      if (!listen) return;
      await server.start(listen).then(
        (port) => deps.log(`spillway: console on ${config.tls ? "https" : "http"}://${listen.replace(/:0$/, `:${port}`)}/`),
        (err: Error) => deps.log(`spillway: console not started on ${listen} (${err.message}); set SPILLWAY_HTTP_LISTEN to another address, or 'off'`),
      );
    },
    stop: () => server.stop(),
  };
}
