import type { CatalogService } from "@spillway/proto";
import { requireInternal, type ServiceImpl } from "@spillway/rpc";
import type { Catalog } from "./catalog.js";

/** gRPC handlers of CatalogService: translation between wire and the catalog. */
export function catalogHandlers(catalog: Catalog): ServiceImpl<typeof CatalogService> {
  return {
    createTable: async (req) => ({ table: await catalog.createTable(req) }),
    getTable: async (req) => ({ table: await catalog.getTable(req.database, req.name) }),
    listTables: async (req) => ({ tables: await catalog.listTables(req.database) }),
    dropTable: async (req) => (await catalog.dropTable(req.database, req.name), {}),
    setIngestionTimePolicy: async (req) => ({ table: await catalog.setIngestionTimePolicy(req.database, req.table, req.enabled) }),

    createExternalTable: async (req) => ({ externalTable: await catalog.createExternalTable(req, false) }),
    createOrAlterExternalTable: async (req) => ({ externalTable: await catalog.createExternalTable(req, true) }),
    getExternalTable: async (req) => ({ externalTable: await catalog.getExternalTable(req.database, req.name) }),
    listExternalTables: async (req) => ({ externalTables: await catalog.listExternalTables(req.database) }),
    dropExternalTable: async (req) => (await catalog.dropExternalTable(req.database, req.name), {}),

    createOrAlterContinuousExport: async (req) => ({ export: await catalog.createOrAlterContinuousExport(req) }),
    showContinuousExport: async (req) => ({ export: await catalog.showContinuousExport(req.database, req.name) }),
    listContinuousExports: async (req) => ({ exports: await catalog.listContinuousExports(req.database) }),
    showExportedArtifacts: async (req) => ({ artifacts: (await catalog.listArtifacts(req.database, req.name)).artifacts }),
    showFailures: async (req) => ({ failures: (await catalog.listFailures(req.database, req.name)).failures }),
    enableContinuousExport: async (req) => ({ export: await catalog.setExportDisabled(req.database, req.name, false) }),
    disableContinuousExport: async (req) => ({ export: await catalog.setExportDisabled(req.database, req.name, true) }),
    dropContinuousExport: async (req) => (await catalog.dropContinuousExport(req.database, req.name), {}),
    runContinuousExportNow: async (req) => {
      const { $typeName: _, ...outcome } = await catalog.runNow(req.database, req.name);
      return outcome;
    },

    listExportSpecs: async (req, ctx) => {
      requireInternal(ctx, "ListExportSpecs");
      return { specs: await catalog.exportSpecs(req.database, req.name) };
    },
  };
}
