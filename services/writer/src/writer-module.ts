import type { SpillwayConfig } from "@spillway/config";
import { WriterService } from "@spillway/proto";
import { ArtifactWriter } from "./artifact-writer.js";
import { writerHandlers } from "./service.js";

export async function createWriterModule(config: SpillwayConfig) {
  const writer = await ArtifactWriter.create(config.dataDir);
  return {
    service: WriterService,
    handlers: writerHandlers(writer),
    stop: async () => writer.close(),
  };
}
