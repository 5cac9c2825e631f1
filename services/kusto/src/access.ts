import type { KustoService } from "@spillway/proto";
import type { AccessTable } from "@spillway/rpc";

/**
 * Who may call KustoService (SPEC §7); enforced by the rpc server. Execute asks only for a
 * known caller: each command then needs what the RPC it runs as needs, and a query what
 * QueryService/Query needs, decided by those RPCs' own rules (kusto-executor.ts).
 */
export const kustoAccess: AccessTable<typeof KustoService> = {
  execute: { need: "authenticated" },
};
