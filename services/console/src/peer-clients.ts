import type { CatalogService, CursorService } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";

/** What the console reads, in-process or over gRPC: the catalog, and backlogs from the export ledger. */
export interface ConsolePeers {
  catalog: Pick<ServiceClient<typeof CatalogService>, "listContinuousExports" | "showContinuousExport" | "showRunHistory" | "showFailures" | "showExportedArtifacts">;
  cursor: Pick<ServiceClient<typeof CursorService>, "getExportBacklogs">;
}
