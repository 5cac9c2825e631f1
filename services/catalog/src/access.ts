import { toJsonString } from "@bufbuild/protobuf";
import { CreateExternalTableRequestSchema, CreateOrAlterExternalTableRequestSchema, type CatalogService } from "@spillway/proto";
import type { AccessTable } from "@spillway/rpc";
import { maskConnectionString } from "@spillway/storage";

const named = { object: (r: { name: string }) => r.name };
const onTable = { object: (r: { table: string }) => r.table };
const onDatabase = { object: () => "" };

/** The request as the audit log keeps it: connection strings without their secrets. */
const externalTableText = <S extends typeof CreateExternalTableRequestSchema | typeof CreateOrAlterExternalTableRequestSchema>(schema: S) => ({
  ...named,
  text: (r: Parameters<typeof toJsonString<S>>[1]) =>
    toJsonString(schema, { ...r, connectionStrings: (r as { connectionStrings: string[] }).connectionStrings.map(maskConnectionString) } as never),
});

/** Who may call each CatalogService RPC (SPEC §7); enforced by the rpc server. */
export const catalogAccess: AccessTable<typeof CatalogService> = {
  createTable: { need: "databaseUser", audit: named },
  getTable: { need: "tableMetadata", table: (r) => r.name },
  listTables: { need: "authenticated" },
  dropTable: { need: "tableAdmin", table: (r) => r.name, audit: named },
  setIngestionTimePolicy: { need: "tableAdmin", table: (r) => r.table, audit: onTable },

  createExternalTable: { need: "databaseUser", audit: externalTableText(CreateExternalTableRequestSchema) },
  // Creating needs Database User, altering Table Admin of it: the catalog, which knows whether it exists, narrows this.
  createOrAlterExternalTable: { need: "databaseUserOrTableAdmin", table: (r) => r.name, audit: externalTableText(CreateOrAlterExternalTableRequestSchema) },
  getExternalTable: { need: "tableMetadata", table: (r) => r.name },
  listExternalTables: { need: "authenticated" },
  dropExternalTable: { need: "tableAdmin", table: (r) => r.name, audit: named },

  createOrAlterContinuousExport: { need: "databaseAdmin", audit: named },
  showContinuousExport: { need: "databaseMonitor" },
  listContinuousExports: { need: "databaseMonitor" },
  showExportedArtifacts: { need: "databaseMonitor" },
  showFailures: { need: "databaseMonitor" },
  showRunHistory: { need: "databaseMonitor" },
  resetContinuousExportCursor: { need: "databaseAdmin", audit: { object: (r) => r.name } },
  backfillContinuousExport: { need: "databaseAdmin", audit: { object: (r) => r.name } },
  planExport: "internal",
  enableContinuousExport: { need: "databaseAdmin", audit: named },
  disableContinuousExport: { need: "databaseAdmin", audit: named },
  dropContinuousExport: { need: "databaseAdmin", audit: named },
  runContinuousExportNow: { need: "databaseAdmin", audit: named },

  addDatabasePrincipals: { need: "databaseAdmin", audit: onDatabase },
  dropDatabasePrincipals: { need: "databaseAdmin", audit: onDatabase },
  showDatabasePrincipals: { need: "databaseMonitor" },
  addTablePrincipals: { need: "tableAdmin", table: (r) => r.table, audit: onTable },
  dropTablePrincipals: { need: "tableAdmin", table: (r) => r.table, audit: onTable },
  showTablePrincipals: { need: "tableMetadata", table: (r) => r.table },
  // Database admins see every call, anyone else their own.
  showCommands: { need: "authenticated" },

  listExportSpecs: "internal",
  getPrincipalGrants: "internal",
  recordCommand: "internal",
};
