import type { WriterService } from "@spillway/proto";
import type { ServiceImpl } from "@spillway/rpc";
import { spreadKeyOf } from "@spillway/storage";
import { measured } from "@spillway/telemetry";
import type { ArtifactWriter } from "./artifact-writer.js";

/** gRPC handlers of WriterService: translation between wire and the artifact writer. */
export function writerHandlers(writer: ArtifactWriter): ServiceImpl<typeof WriterService> {
  return {
    async stageArtifacts(req) {
      const { value: staged, usage } = await measured(() => writer.stage({
        stageId: req.stageId,
        externalTable: req.externalTable!,
        spoolHandle: req.spoolHandle,
        encodedFiles: req.encodedFiles,
        spoolRows: req.spoolRows,
        nameStem: req.nameStem,
        rowGroupSize: req.parquetRowGroupSize,
        sizeLimit: req.sizeLimit,
        spreadKey: spreadKeyOf(req.nameStem),
        deltaAppId: req.deltaAppId,
        deltaTxnVersion: req.deltaTxnVersion,
        deltaTxnSince: req.deltaTxnSince,
        fromCursor: req.fromCursor,
        toCursor: req.toCursor,
      }), writer.duckdbMemory.read);
      return { ...staged, usage };
    },
    async uploadArtifacts(req, ctx) {
      const { value: artifacts, usage } = await measured(() => writer.upload(req.stageId, ctx.signal), writer.duckdbMemory.read);
      return { artifacts, usage };
    },
    async discardStage(req) {
      await writer.discard(req.stageId);
      return {};
    },
    async readDeltaSchema(req) {
      return writer.readDeltaSchema(req.connectionStrings);
    },
    async findDeltaCommit(req) {
      const hold = req.holdToCursor ? { fromCursor: req.holdFromCursor, toCursor: req.holdToCursor } : undefined;
      return writer.findDeltaCommit(req.externalTable!, req.appId, req.txnVersion, { fence: req.fence, sinceVersion: req.sinceVersion, hold });
    },
    async writeManifest(req) {
      await writer.writeManifest(req.externalTable!, req.name, req.bodyJson);
      return {};
    },
    deleteArtifacts: (req) => writer.delete(req.externalTable!, req.paths),
  };
}
