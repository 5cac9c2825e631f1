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

/**
 * An in-memory DuckDB instance that may only touch `allowedDirectories` (created if
 * missing) and computes in UTC, so text without an offset is read as UTC. `threads`
 * defaults to DuckDB's own choice (one per core).
 */
export async function openSandboxedInstance(allowedDirectories: string[], tempDirectory: string, threads?: number): Promise<DuckDBInstance> {
  await Promise.all([...allowedDirectories, tempDirectory].map((d) => mkdir(d, { recursive: true })));
  const instance = await DuckDBInstance.create(":memory:", threads === undefined ? {} : { threads: String(threads) });
  const setup = await instance.connect();
  try {
    await setup.run("SET TimeZone = 'UTC'");
    await lockDownInstance(setup, allowedDirectories, tempDirectory);
  } finally {
    setup.closeSync();
  }
  return instance;
}
