import type { CatalogService, CursorService, QueryService, WriterService } from "@spillway/proto";
import type { ServiceClient } from "@spillway/rpc";

/** The services the scheduler uses, in-process or over gRPC; none of them uses it. */
export interface SchedulerPeers {
  catalog: ServiceClient<typeof CatalogService>;
  cursor: ServiceClient<typeof CursorService>;
  query: ServiceClient<typeof QueryService>;
  writer: ServiceClient<typeof WriterService>;
}
