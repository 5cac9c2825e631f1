import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where the store contract suites keep each store under test: a new folder (DuckDB) or a new
 * PostgreSQL database (its URL). The same place opened again must find what was committed.
 */
export interface StorePlaces {
  create(): Promise<string>;
  remove(place: string): Promise<void>;
}

export const temporaryFolders = (prefix: string): StorePlaces => ({
  create: () => mkdtemp(join(tmpdir(), prefix)),
  remove: (dir) => rm(dir, { recursive: true, force: true }),
});
