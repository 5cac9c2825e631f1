import type { WriterService } from "@spillway/proto";
import type { AccessTable } from "@spillway/rpc";

/** Every WriterService RPC is internal: it writes files and holds storage secrets. */
export const writerAccess: AccessTable<typeof WriterService> = {
  stageArtifacts: "internal",
  uploadArtifacts: "internal",
  discardStage: "internal",
  deleteArtifacts: "internal",
  writeManifest: "internal",
  readDeltaSchema: "internal",
  findDeltaCommit: "internal",
};
