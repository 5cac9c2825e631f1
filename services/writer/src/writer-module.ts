import type { SpillwayConfig } from "@spillway/config";
import { WriterService } from "@spillway/proto";
import { writerAccess } from "./access.js";
import { ArtifactWriter } from "./artifact-writer.js";
import { writerHandlers } from "./service.js";

export async function createWriterModule(config: SpillwayConfig) {
  const writer = await ArtifactWriter.create(config.dataDir, { roots: config.fileTargetRoots, dataDir: config.dataDir });
  return {
    service: WriterService,
    handlers: writerHandlers(writer),
    access: writerAccess,
    stop: async () => writer.close(),
  };
}
