import { mkdir } from "node:fs/promises";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { quoteList, quoteLiteral } from "./sql-text.js";

/**
 * Confines a DuckDB instance to the given folders and locks its configuration, so
 * no statement run on it afterwards can read or write anything else, attach files
 * elsewhere, load extensions or undo these settings.
 */
export async function lockDownInstance(connection: DuckDBConnection, allowedDirectories: string[], tempDirectory: string): Promise<void> {
  const dirs = allowedDirectories.map((d) => (d.endsWith("/") ? d : `${d}/`));
  await connection.run(`SET temp_directory = ${quoteLiteral(tempDirectory)}`);
  await connection.run(`SET allowed_directories = ${quoteList(dirs)}`);
  await connection.run("SET autoinstall_known_extensions = false");
  await connection.run("SET autoload_known_extensions = false");
  await connection.run("SET enable_external_access = false");
  await connection.run("SET lock_configuration = true");
}

export interface InstanceLimits {
  /** Worker threads; DuckDB's own choice (one per core) when absent. */
  threads?: number;
  /** DuckDB's memory_limit, e.g. "2GB"; what does not fit spills to the temp directory. */
  memoryLimit?: string;
  /**
   * Whether DuckDB keeps the blocks of the files it reads in memory (enable_external_file_cache,
   * on by default). An instance that reads each file once or twice, as runs read new extents,
   * gains nothing from it, and its memory grew by about 50 KB with every file read, up to the
   * memory limit (80% of the machine's unless set): 160 MB in 1,500 runs of bench #3.
   */
  externalFileCache?: boolean;
}

/**
 * An in-memory DuckDB instance that may only touch `allowedDirectories` (created if
 * missing) and computes in UTC, so text without an offset is read as UTC. Its limits are
 * set before the configuration is locked, so no statement can raise them.
 */
export async function openSandboxedInstance(allowedDirectories: string[], tempDirectory: string, limits: InstanceLimits = {}): Promise<DuckDBInstance> {
  await Promise.all([...allowedDirectories, tempDirectory].map((d) => mkdir(d, { recursive: true })));
  const settings: Record<string, string> = {};
  if (limits.threads !== undefined) settings.threads = String(limits.threads);
  if (limits.memoryLimit !== undefined) settings.memory_limit = limits.memoryLimit;
  if (limits.externalFileCache === false) settings.enable_external_file_cache = "false";
  const instance = await DuckDBInstance.create(":memory:", settings);
  const setup = await instance.connect();
  try {
    await setup.run("SET TimeZone = 'UTC'");
    await lockDownInstance(setup, allowedDirectories, tempDirectory);
  } finally {
    setup.closeSync();
  }
  return instance;
}
