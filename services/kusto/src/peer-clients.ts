import type { CatalogService, QueryService } from "@spillway/proto";
import type { AccessTable, Admission, PublicRule, ServiceClient } from "@spillway/rpc";

/** The services Kusto commands and queries run on, in-process or over gRPC; none of them uses this one. */
export interface KustoPeers {
  catalog: ServiceClient<typeof CatalogService>;
  query: ServiceClient<typeof QueryService>;
}

/**
 * Who may call each RPC of those services: their own access tables (services/*\/src/access.ts),
 * handed over by the module registry. A command needs exactly what the RPC it runs as needs,
 * decided from these tables, so no second table of roles exists for commands.
 */
export interface PeerAccess {
  catalog: AccessTable<typeof CatalogService>;
  query: AccessTable<typeof QueryService>;
}

/**
 * Admits a call of another service's RPC on behalf of a principal the rpc server has
 * already authenticated for Execute: the same guard as a direct call (the RPC's least
 * role, per-principal limits, the audit record), only without a token to check again.
 */
export interface CallAdmitter {
  admit(rpc: string, rule: PublicRule<never>, request: unknown, principal: string): Promise<Admission>;
}
