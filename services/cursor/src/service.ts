import { rm } from "node:fs/promises";
import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { notFound } from "@spillway/errors";
import { parseCursor } from "@spillway/kusto";
import type { CursorService } from "@spillway/proto";
import type { ServiceImpl } from "@spillway/rpc";
import type { ArtifactRecord, CursorStore, ExportStateRecord } from "./cursor-store.js";
import type { ExportRunner, RunOutcome } from "./export-runner.js";
import type { CursorPeers } from "./peer-clients.js";

/** gRPC handlers of CursorService: translation between wire and the store and runner. */
export function cursorHandlers(store: CursorStore, runner: ExportRunner, peers: CursorPeers, dataDir: string): ServiceImpl<typeof CursorService> {
  return {
    async getCurrentCursor() {
      return { cursor: cursorText(await store.currentCursor()) };
    },
    async commitExtent(req) {
      const cursor = await store.commitExtent({
        database: req.database,
        table: req.table,
        extentId: req.extentId,
        path: req.path,
        rowCount: req.rowCount,
        sizeBytes: req.sizeBytes,
      });
      return { cursor: cursor.toString() };
    },
    async listExtents(req) {
      const after = parseCursor(req.afterCursor, "afterCursor");
      const upTo = req.upToCursor ? parseCursor(req.upToCursor, "upToCursor") : undefined;
      const { extents, cursor } = await store.listExtents(req.database, req.tables, after, upTo);
      return { extents: extents.map((e) => ({ ...e, cursor: e.cursor.toString() })), cursor: cursorText(cursor) };
    },
    async dropTableExtents(req) {
      const paths = await store.dropTableExtents(req.database, req.table);
      await Promise.all(paths.map((p) => rm(join(dataDir, p), { force: true })));
      return {};
    },
    async initExportState(req) {
      return { state: stateMessage(await store.initExportState(req.exportId, req.database, req.name), runner) };
    },
    async getExportStates(req) {
      return { states: (await store.getExportStates(req.exportIds)).map((s) => stateMessage(s, runner)) };
    },
    async dropExportState(req) {
      await runner.forget(req.exportId, req.externalTable);
      return {};
    },
    async listArtifacts(req) {
      return { artifacts: (await store.listArtifacts(req.exportId)).map(artifactMessage) };
    },
    async listFailures(req) {
      return {
        failures: (await store.listFailures(req.exportId)).map((f) => ({
          ...f,
          timestamp: timestampFromDate(f.timestamp),
          lastSuccessRun: f.lastSuccessRun && timestampFromDate(f.lastSuccessRun),
        })),
      };
    },
    async runExportNow(req) {
      const { specs } = await peers.catalog.listExportSpecs({ database: req.database, name: req.name });
      const spec = specs[0];
      if (!spec) throw notFound(`continuous export '${req.name}' does not exist in database '${req.database}'`);
      return runOutcomeMessage(await runner.run(spec));
    },
  };
}

export function runOutcomeMessage(o: RunOutcome) {
  return {
    runId: o.runId,
    result: o.result,
    fromCursor: cursorText(o.from),
    toCursor: cursorText(o.to),
    artifacts: o.artifacts.map(artifactMessage),
    details: o.details,
  };
}

function artifactMessage(a: ArtifactRecord) {
  return {
    timestamp: timestampFromDate(a.timestamp),
    externalTableName: a.externalTable,
    path: a.path,
    numRecords: a.numRecords,
    sizeInBytes: a.sizeBytes,
  };
}

function stateMessage(s: ExportStateRecord, runner: ExportRunner) {
  return {
    exportId: s.exportId,
    checkpointCursor: cursorText(s.checkpointCursor),
    startCursor: cursorText(s.startCursor),
    isRunning: runner.isRunning(s.exportId),
    lastRunResult: s.lastRunResult,
    lastRunTime: s.lastRunTime && timestampFromDate(s.lastRunTime),
    runCount: s.runCount,
  };
}

/** Cursor 0 is "before anything was ingested", shown as the empty cursor. */
function cursorText(c: bigint): string {
  return c === 0n ? "" : c.toString();
}
