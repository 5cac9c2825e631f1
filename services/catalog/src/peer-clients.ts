import type { CursorService, QueryService, WriterService } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";

/** The other services the catalog uses, in-process or over gRPC. */
export interface CatalogPeers {
  query: ServiceClient<typeof QueryService>;
  cursor: ServiceClient<typeof CursorService>;
  writer: ServiceClient<typeof WriterService>;
}
