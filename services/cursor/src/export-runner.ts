import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import { durationMs } from "@spillway/kusto";
import { ErrorCode, errorMessage, redactSecrets, SpillwayError } from "@spillway/errors";
import type { ExportSpec } from "@spillway/proto";
import { ticksFromEpochMs } from "@spillway/kusto";
import type { ArtifactRecord, CursorStore } from "./cursor-store.js";
import type { CursorPeers } from "./peer-clients.js";

export interface RunOutcome {
  runId: string;
  result: "Completed" | "Failed";
  from: bigint;
  to: bigint;
  artifacts: ArtifactRecord[];
  details: string;
}

/** A failure that will not go away by retrying: the definition or the storage must change. */
export class PermanentRunError extends Error {}

const tracer = trace.getTracer("spillway-cursor");

/**
 * Runs one continuous export: takes the cursor range, has the query service bind and
 * execute, the writer write, then commits artifacts and checkpoint atomically. One run
 * per export at a time; a failure leaves the checkpoint where it was.
 */
export class ExportRunner {
  private readonly inFlight = new Map<string, Promise<RunOutcome>>();

  constructor(
    private readonly store: CursorStore,
    private readonly peers: CursorPeers,
    private readonly dataDir: string,
    private readonly now: () => number = Date.now,
  ) {}

  isRunning(exportId: string): boolean {
    return this.inFlight.has(exportId);
  }

  get runningCount(): number {
    return this.inFlight.size;
  }

  /** Runs the export, after any run of it already in flight. */
  async run(spec: ExportSpec): Promise<RunOutcome> {
    const previous = this.inFlight.get(spec.id);
    const next = (async () => {
      if (previous) await previous.catch(() => undefined);
      return this.runOnce(spec);
    })();
    this.inFlight.set(spec.id, next);
    try {
      return await next;
    } finally {
      if (this.inFlight.get(spec.id) === next) this.inFlight.delete(spec.id);
    }
  }

  /** Waits for every run in flight (on shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private runOnce(spec: ExportSpec): Promise<RunOutcome> {
    return tracer.startActiveSpan("continuous_export.run", async (span) => {
      span.setAttributes({ "spillway.database": spec.database, "spillway.export": spec.name, "spillway.export_id": spec.id });
      try {
        const outcome = await this.execute(spec);
        span.setAttributes({
          "spillway.run_id": outcome.runId,
          "spillway.result": outcome.result,
          "spillway.artifacts": outcome.artifacts.length,
        });
        if (outcome.result === "Failed") span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.details });
        return outcome;
      } finally {
        span.end();
      }
    });
  }

  private async execute(spec: ExportSpec): Promise<RunOutcome> {
    const state =
      (await this.store.getExportStates([spec.id]))[0] ?? (await this.store.initExportState(spec.id, spec.database, spec.name));
    const from = state.checkpointCursor;
    const current = await this.store.currentCursor();
    const latency = durationMs(spec.forcedLatency);
    // forcedLatency: leave extents committed less than that long ago for a later run.
    let to = latency > 0 ? minBigint(current, ticksFromEpochMs(this.now() - latency)) : current;
    if (to < from) to = from;

    const runId = randomUUID();
    const runNumber = await this.store.beginRun(spec.id, runId, from, to);
    const spoolName = join("spool", `${runId}.parquet`);
    let written: ArtifactRecord[] = [];
    let externalTableName = spec.externalTable?.name ?? "";
    try {
      const externalTable = spec.externalTable;
      if (!externalTable) throw new PermanentRunError(`the external table of export '${spec.name}' no longer exists`);
      externalTableName = externalTable.name;
      const known = new Map(spec.tables.map((t) => [t.name, t]));
      for (const name of [...spec.factTables, ...spec.dimensionTables]) {
        if (!known.has(name)) throw new PermanentRunError(`table '${name}' used by export '${spec.name}' no longer exists`);
      }
      for (const name of spec.factTables) {
        if (!known.get(name)!.ingestionTimePolicy) {
          throw new PermanentRunError(`fact table '${name}' has its IngestionTime policy off; a fact table needs it`);
        }
      }

      const facts = await this.store.listExtents(spec.database, spec.factTables, from, to);
      if (facts.extents.length === 0) return await this.commit(spec, runId, externalTableName, from, to, []);
      const dims = spec.dimensionTables.length
        ? (await this.store.listExtents(spec.database, spec.dimensionTables, 0n)).extents
        : [];
      const pathsOf = (table: string) =>
        [...facts.extents, ...dims].filter((e) => e.table === table).map((e) => e.path);
      const tables = spec.tables.map((t) => ({ name: t.name, columns: t.columns, extentPaths: pathsOf(t.name) }));

      const spool = await this.peers.query.executeToSpool({
        query: spec.query,
        tables,
        outputColumns: externalTable.columns,
        spoolName,
      });
      if (spool.rowCount === 0n) return await this.commit(spec, runId, externalTableName, from, to, []);

      const result = await this.peers.writer.writeArtifacts({
        externalTable,
        spoolPath: spool.spoolPath,
        nameStem: `${spec.id.slice(0, 8)}_${runNumber}_${runId.slice(0, 8)}`,
        sizeLimit: spec.properties?.sizeLimit ?? 0n,
        parquetRowGroupSize: spec.properties?.parquetRowGroupSize ?? 0,
        distributed: spec.properties?.distributed ?? true,
      });
      written = result.artifacts.map((a) => ({
        timestamp: new Date(this.now()),
        externalTable: externalTableName,
        path: a.path,
        numRecords: a.numRecords,
        sizeBytes: a.sizeInBytes,
      }));
      return await this.commit(spec, runId, externalTableName, from, to, written);
    } catch (err) {
      return await this.fail(spec, runId, from, to, err, written);
    } finally {
      await rm(join(this.dataDir, spoolName), { force: true });
    }
  }

  private async commit(spec: ExportSpec, runId: string, externalTable: string, from: bigint, to: bigint, artifacts: ArtifactRecord[]): Promise<RunOutcome> {
    const committed = await this.store.commitRun(spec.id, runId, externalTable, from, to, artifacts);
    return { runId, result: "Completed", from, to, artifacts: committed, details: "" };
  }

  private async fail(spec: ExportSpec, runId: string, from: bigint, to: bigint, err: unknown, written: ArtifactRecord[]): Promise<RunOutcome> {
    let partial = false;
    if (written.length && spec.externalTable) {
      // The commit did not happen: files of this attempt must not stay behind looking like data.
      try {
        await this.peers.writer.deleteArtifacts({ externalTable: spec.externalTable, paths: written.map((a) => a.path) });
      } catch {
        partial = true;
      }
    }
    const details = redactSecrets(errorMessage(err));
    await this.store.failRun(spec.id, runId, {
      operationId: runId,
      name: spec.name,
      failureKind: partial ? "PartialFailure" : "Failure",
      details,
      isPermanent: isPermanent(err),
    });
    return { runId, result: "Failed", from, to, artifacts: [], details };
  }
}

function isPermanent(err: unknown): boolean {
  if (err instanceof PermanentRunError) return true;
  if (err instanceof SpillwayError) {
    return err.code === ErrorCode.failedPrecondition || err.code === ErrorCode.notFound || err.code === ErrorCode.permissionDenied || err.code === ErrorCode.invalidArgument;
  }
  return false;
}

function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
