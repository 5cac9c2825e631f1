import type { CatalogService } from "@spillway/proto";
import type { ServiceImpl } from "@spillway/rpc";
import type { AuditLog } from "./audit-log.js";
import type { Catalog } from "./catalog.js";
import type { PrincipalRegistry } from "./principal-registry.js";

/** gRPC handlers of CatalogService: translation between wire and the catalog. Who may call each is in access.ts. */
export function catalogHandlers(catalog: Catalog, principals: PrincipalRegistry, audit: AuditLog): ServiceImpl<typeof CatalogService> {
  return {
    createTable: async (req, ctx) => ({ table: await catalog.createTable(req, ctx.caller) }),
    getTable: async (req) => ({ table: await catalog.getTable(req.database, req.name) }),
    listTables: async (req, ctx) => ({ tables: await catalog.listTables(req.database, ctx.caller) }),
    dropTable: async (req) => (await catalog.dropTable(req.database, req.name), {}),
    setIngestionTimePolicy: async (req) => ({ table: await catalog.setIngestionTimePolicy(req.database, req.table, req.enabled) }),

    createExternalTable: async (req, ctx) => ({ externalTable: await catalog.createExternalTable(req, false, ctx.caller) }),
    createOrAlterExternalTable: async (req, ctx) => ({ externalTable: await catalog.createExternalTable(req, true, ctx.caller) }),
    getExternalTable: async (req) => ({ externalTable: await catalog.getExternalTable(req.database, req.name) }),
    listExternalTables: async (req, ctx) => ({ externalTables: await catalog.listExternalTables(req.database, ctx.caller) }),
    dropExternalTable: async (req) => (await catalog.dropExternalTable(req.database, req.name), {}),

    createOrAlterContinuousExport: async (req) => ({ export: await catalog.createOrAlterContinuousExport(req) }),
    showContinuousExport: async (req) => ({ export: await catalog.showContinuousExport(req.database, req.name) }),
    listContinuousExports: async (req) => ({ exports: await catalog.listContinuousExports(req.database) }),
    showExportedArtifacts: async (req) => ({ artifacts: (await catalog.listArtifacts(req.database, req.name)).artifacts }),
    showFailures: async (req) => ({ failures: (await catalog.listFailures(req.database, req.name)).failures }),
    backfillContinuousExport: async (req) => catalog.backfill(req.database, req.name, req.fromCursor),
    resetContinuousExportCursor: async (req, ctx) => ({ export: await catalog.resetCursor(req.database, req.name, req.cursor, ctx.caller.principal) }),
    planExport: async (req) => ({ spec: await catalog.planExport(req) }),
    showRunHistory: async (req) => ({ runs: (await catalog.runHistory(req.database, req.name, req.since)).runs }),
    enableContinuousExport: async (req) => ({ export: await catalog.setExportDisabled(req.database, req.name, false) }),
    disableContinuousExport: async (req) => ({ export: await catalog.setExportDisabled(req.database, req.name, true) }),
    dropContinuousExport: async (req) => (await catalog.dropContinuousExport(req.database, req.name), {}),
    runContinuousExportNow: async (req) => {
      const { $typeName: _, ...outcome } = await catalog.runNow(req.database, req.name);
      return outcome;
    },

    addDatabasePrincipals: async (req) => ({ principals: await principals.addDatabasePrincipals(req.database, req.role, req.principals, req.notes) }),
    dropDatabasePrincipals: async (req) => ({ principals: await principals.dropDatabasePrincipals(req.database, req.role, req.principals) }),
    showDatabasePrincipals: async (req) => ({ principals: await principals.showDatabasePrincipals(req.database) }),
    addTablePrincipals: async (req) => ({ principals: await principals.addTablePrincipals(req.database, req.table, req.role, req.principals, req.notes) }),
    dropTablePrincipals: async (req) => ({ principals: await principals.dropTablePrincipals(req.database, req.table, req.role, req.principals) }),
    showTablePrincipals: async (req) => ({ principals: await principals.showTablePrincipals(req.database, req.table) }),
    showCommands: async (req, ctx) => ({ commands: await audit.show(req.database, ctx.caller) }),

    listExportSpecs: async (req) => ({ specs: await catalog.exportSpecs(req.database, req.name) }),
    getPrincipalGrants: async (req) => principals.grantsOf(req.principal, req.database),
    recordCommand: async (req) => (req.command && (await audit.record(req.command)), {}),
  };
}
