import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ALL_RIGHTS, createTokenVerifier, type DatabaseRole, type Grants, type TableRole } from "@spillway/auth";
import type { SpillwayConfig } from "@spillway/config";
import { CommandRecordSchema, type CatalogService } from "@spillway/proto";
import { CallGuard, type ServiceClient } from "@spillway/rpc";

/** The principal of every call when authentication is off. */
export const ANONYMOUS = "anonymous";

/**
 * The call guard of this process (SPEC §7): tokens checked against the configured issuer,
 * roles from the configured cluster principals and the catalog's grants, audit records
 * kept by the catalog. With authentication off every caller is `anonymous` with every right.
 */
export function createCallGuard(config: SpillwayConfig, catalog: () => ServiceClient<typeof CatalogService>, log: (line: string) => void): CallGuard {
  const { auth } = config;
  const limits = { query: config.limits.maxQueriesPerPrincipal, ingest: config.limits.maxIngestsPerPrincipal };
  const audit = async (record: Parameters<ConstructorParameters<typeof CallGuard>[0]["audit"]>[0]) => {
    await catalog().recordCommand({
      command: create(CommandRecordSchema, {
        ...record,
        startedOn: timestampFromDate(record.startedOn),
        duration: durationFromMs(record.durationMs),
      }),
    });
  };
  if (auth.mode !== "jwt") {
    return new CallGuard({ authenticate: async () => ANONYMOUS, grantsOf: async () => ALL_RIGHTS, audit, limits, log });
  }
  const verifier = createTokenVerifier({ issuer: auth.issuer, audience: auth.audience, jwks: auth.jwks, principalClaim: auth.principalClaim, refreshCooldownMs: auth.jwksCooldownMs });
  const admins = new Set(auth.clusterAdmins.map((p) => p.toLowerCase()));
  const viewers = new Set(auth.clusterViewers.map((p) => p.toLowerCase()));
  return new CallGuard({
    authenticate: async (authorization) => (await verifier.verify(authorization)).fqn,
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
  });
}
