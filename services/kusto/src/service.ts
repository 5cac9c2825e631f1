import type { KustoService } from "@spillway/proto";
import type { ServiceImpl } from "@spillway/rpc";
import type { KustoExecutor } from "./kusto-executor.js";

/** gRPC handlers of KustoService: translation between wire and the executor. Who may call is in access.ts. */
export function kustoHandlers(executor: KustoExecutor): ServiceImpl<typeof KustoService> {
  return {
    execute: (req, ctx) => executor.execute({ database: req.database, text: req.text }, ctx.caller),
  };
}
