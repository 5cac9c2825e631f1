import type { CatalogService, CursorService } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";

/** The other services the query service uses, in-process or over gRPC. */
export interface QueryPeers {
  catalog: ServiceClient<typeof CatalogService>;
  cursor: ServiceClient<typeof CursorService>;
}
