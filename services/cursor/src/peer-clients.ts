import type { CatalogService, QueryService, WriterService } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";

/** The other services the cursor service uses, in-process or over gRPC. */
export interface CursorPeers {
  catalog: ServiceClient<typeof CatalogService>;
  query: ServiceClient<typeof QueryService>;
  writer: ServiceClient<typeof WriterService>;
}
