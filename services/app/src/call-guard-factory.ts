import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ALL_RIGHTS, createTokenVerifier, type DatabaseRole, type Grants, type TableRole } from "@spillway/auth";
import type { SpillwayConfig } from "@spillway/config";
import { CommandRecordSchema, type CatalogService } from "@spillway/proto";
import { CallGuard, SPILLWAY_CALLER, type CallGuardOptions, type ServiceClient } from "@spillway/rpc";
import type { CallAdmitter } from "../../kusto/src/index.js";

/** The principal of every call when authentication is off. */
export const ANONYMOUS = "anonymous";

type Catalog = () => ServiceClient<typeof CatalogService>;

/** What both guards of a process share: where roles come from, where audit records go, the limits. */
function guardOptions(config: SpillwayConfig, catalog: Catalog, log: (line: string) => void): Omit<CallGuardOptions, "authenticate"> {
  const { auth } = config;
  const limits = { query: config.limits.maxQueriesPerPrincipal, ingest: config.limits.maxIngestsPerPrincipal };
  const audit: CallGuardOptions["audit"] = async (record) => {
    await catalog().recordCommand({
      command: create(CommandRecordSchema, {
        ...record,
        startedOn: timestampFromDate(record.startedOn),
        duration: durationFromMs(record.durationMs),
      }),
    });
  };
  if (auth.mode !== "jwt") return { grantsOf: async () => ALL_RIGHTS, audit, limits, log };
  const admins = new Set(auth.clusterAdmins.map((p) => p.toLowerCase()));
  const viewers = new Set(auth.clusterViewers.map((p) => p.toLowerCase()));
  return {
    async grantsOf(principal, database): Promise<Grants> {
      const fqn = principal.toLowerCase();
      if (admins.has(fqn)) return ALL_RIGHTS;
      // Asked on every call, so a grant or a revocation applies to the next one.
      const held = await catalog().getPrincipalGrants({ principal, database });
      const tables = new Map<string, Set<TableRole>>();
      for (const { table, role } of held.tableRoles) tables.set(table, (tables.get(table) ?? new Set()).add(role as TableRole));
      return { cluster: viewers.has(fqn) ? "viewer" : undefined, database: new Set(held.databaseRoles as DatabaseRole[]), tables };
    },
    audit,
    limits,
    log,
  };
}

/**
 * The call guard of this process (SPEC §7): tokens checked against the configured issuer,
 * roles from the configured cluster principals and the catalog's grants, audit records
 * kept by the catalog. With authentication off every caller is `anonymous` with every right.
 */
export function createCallGuard(config: SpillwayConfig, catalog: Catalog, log: (line: string) => void): CallGuard {
  const { auth } = config;
  const options = guardOptions(config, catalog, log);
  if (auth.mode !== "jwt") return new CallGuard({ ...options, authenticate: async () => ANONYMOUS });
  const verifier = createTokenVerifier({ issuer: auth.issuer, audience: auth.audience, jwks: auth.jwks, principalClaim: auth.principalClaim, refreshCooldownMs: auth.jwksCooldownMs });
  return new CallGuard({ ...options, authenticate: async (authorization) => (await verifier.verify(authorization)).fqn });
}

/**
 * Admits the RPCs a Kusto command runs as, for the principal the rpc server admitted to
 * Execute: the same CallGuard (the called RPC's own rule, the limits, the audit record under
 * that RPC's name), given the principal instead of a token. Only the Kusto module holds it,
 * never the server, so no caller can name a principal it did not authenticate as.
 */
export function createCommandAdmitter(config: SpillwayConfig, catalog: Catalog, log: (line: string) => void): CallAdmitter & Pick<CallGuard, "drain"> {
  const options = guardOptions(config, catalog, log);
  const guard = new CallGuard({
    ...options,
    authenticate: async (principal) => principal!,
    // Another Spillway service calling Execute is trusted with everything, as on any RPC.
    grantsOf: (principal, database) => (principal === SPILLWAY_CALLER.principal ? Promise.resolve(ALL_RIGHTS) : options.grantsOf(principal, database)),
  });
  return { admit: (rpc, rule, request, principal) => guard.admit(rpc, rule, request, principal), drain: () => guard.drain() };
}
