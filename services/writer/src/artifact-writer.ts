import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { openSandboxedInstance } from "@spillway/duck";
import { ErrorCode, invalidArgument, SpillwayError, unavailable } from "@spillway/errors";
import type { ExternalTable } from "@spillway/proto";
import { openStorageTarget, parseConnectionString, type StorageTarget } from "@spillway/storage";
import { artifactFileName, encodeArtifactSql } from "./artifact-encoding.js";

export interface WrittenArtifact {
  path: string;
  numRecords: bigint;
  sizeInBytes: bigint;
}

export interface StageRequest {
  stageId: string;
  externalTable: ExternalTable;
  spoolPath: string;
  nameStem: string;
  rowGroupSize: number;
  /** Run number or similar, to spread artifacts over the connection strings. */
  spreadKey: number;
}

interface StagedArtifact extends WrittenArtifact {
  localFile: string;
  name: string;
  target: StorageTarget;
}

/**
 * Encodes spooled query results in the external table's format with DuckDB (no rows
 * pass through JavaScript), stages them locally, and uploads them to the table's
 * storage when told to: in between, the caller journals where they will land.
 */
export class ArtifactWriter {
  private readonly stages = new Map<string, StagedArtifact[]>();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly dataDir: string,
  ) {}

  static async create(dataDir: string): Promise<ArtifactWriter> {
    const dirs = ["spool", "tmp/writer"].map((d) => join(dataDir, d));
    return new ArtifactWriter(await openSandboxedInstance(dirs, join(dataDir, "tmp/writer")), dataDir);
  }

  close(): void {
    this.instance.closeSync();
  }

  async stage(req: StageRequest): Promise<WrittenArtifact[]> {
    const table = req.externalTable;
    if (table.connectionStrings.length === 0) throw invalidArgument(`external table '${table.name}' has no connection string`);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(req.stageId)) throw invalidArgument(`stage id '${req.stageId}' is not a plain name`);
    await this.discard(req.stageId);
    const dir = join(this.dataDir, "tmp/writer", req.stageId);
    await mkdir(dir, { recursive: true });
    const name = artifactFileName(table, req.nameStem);
    const localFile = join(dir, name);
    const connection = await this.instance.connect();
    try {
      const reader = await connection.runAndReadAll(encodeArtifactSql(table, join(this.dataDir, req.spoolPath), localFile, req.rowGroupSize));
      const rows = BigInt(String(reader.getRows()[0]![0]));
      const { size } = await stat(localFile);
      const target = targetFor(table, req.spreadKey);
      const staged: StagedArtifact[] = [{ localFile, name, target, path: target.pathOf(name), numRecords: rows, sizeInBytes: BigInt(size) }];
      this.stages.set(req.stageId, staged);
      return staged.map(({ path, numRecords, sizeInBytes }) => ({ path, numRecords, sizeInBytes }));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    } finally {
      connection.closeSync();
    }
  }

  /** Uploads what `stage` staged; safe to repeat (the same names are overwritten). */
  async upload(stageId: string): Promise<WrittenArtifact[]> {
    const staged = this.stages.get(stageId);
    if (!staged) throw unavailable(`stage ${stageId} is gone (the writer restarted?); the run must be tried again`);
    for (const a of staged) await uploadWithClassification(a.target, a.name, a.localFile);
    await this.discard(stageId);
    return staged.map(({ path, numRecords, sizeInBytes }) => ({ path, numRecords, sizeInBytes }));
  }

  async discard(stageId: string): Promise<void> {
    this.stages.delete(stageId);
    await rm(join(this.dataDir, "tmp/writer", stageId), { recursive: true, force: true });
  }

  /** Removes artifacts (full paths as returned by write) from the table's storage. */
  async delete(table: ExternalTable, paths: string[]): Promise<void> {
    const targets = table.connectionStrings.map((cs) => openStorageTarget(parseConnectionString(cs)));
    for (const path of paths) {
      const target = targets.find((t) => path.startsWith(t.pathOf("")));
      if (target) await target.delete(path.slice(target.pathOf("").length));
    }
  }
}

function targetFor(table: ExternalTable, spreadKey: number): StorageTarget {
  const strings = table.connectionStrings;
  return openStorageTarget(parseConnectionString(strings[spreadKey % strings.length]!));
}

/** Storage errors as domain errors: missing container or denied access are permanent, the rest transient. */
async function uploadWithClassification(target: StorageTarget, name: string, file: string): Promise<string> {
  try {
    return await target.put(name, file);
  } catch (err) {
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (e.statusCode === 404) throw new SpillwayError(ErrorCode.failedPrecondition, `storage container not found: ${e.code ?? e.message}`);
    if (e.statusCode === 403 || e.statusCode === 401) throw new SpillwayError(ErrorCode.permissionDenied, `storage access denied: ${e.code ?? e.message}`);
    throw new SpillwayError(ErrorCode.unavailable, `storage write failed: ${e.message ?? String(err)}`);
  }
}
