import type { CursorService, WriterService } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";

/** The services the catalog uses, in-process or over gRPC: both leaves. */
export interface CatalogPeers {
  cursor: ServiceClient<typeof CursorService>;
  writer: ServiceClient<typeof WriterService>;
}
