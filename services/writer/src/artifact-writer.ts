import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { openSandboxedInstance } from "@spillway/duck";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";
import type { ExternalTable } from "@spillway/proto";
import { openStorageTarget, parseConnectionString, type StorageTarget } from "@spillway/storage";
import { artifactFileName, encodeArtifactSql } from "./artifact-encoding.js";

export interface WrittenArtifact {
  path: string;
  numRecords: bigint;
  sizeInBytes: bigint;
}

export interface WriteRequest {
  externalTable: ExternalTable;
  spoolPath: string;
  nameStem: string;
  rowGroupSize: number;
  /** Run number or similar, to spread artifacts over the connection strings. */
  spreadKey: number;
}

/**
 * Encodes spooled query results in the external table's format with DuckDB (no rows
 * pass through JavaScript) and uploads them to the table's storage.
 */
export class ArtifactWriter {
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

  async write(req: WriteRequest): Promise<WrittenArtifact[]> {
    const table = req.externalTable;
    if (table.connectionStrings.length === 0) throw invalidArgument(`external table '${table.name}' has no connection string`);
    const spool = join(this.dataDir, req.spoolPath);
    const name = artifactFileName(table, req.nameStem);
    const staged = join(this.dataDir, "tmp/writer", name);
    const connection = await this.instance.connect();
    try {
      const reader = await connection.runAndReadAll(encodeArtifactSql(table, spool, staged, req.rowGroupSize));
      const rows = BigInt(String(reader.getRows()[0]![0]));
      const { size } = await stat(staged);
      const target = targetFor(table, req.spreadKey);
      const path = await uploadWithClassification(target, name, staged);
      return [{ path, numRecords: rows, sizeInBytes: BigInt(size) }];
    } finally {
      connection.closeSync();
      await rm(staged, { force: true });
    }
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
