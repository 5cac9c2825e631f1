import { mkdir, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";

/**
 * Where extents live (DESIGN "Scale-out"): the query service writes them, the cursor service
 * only records their handles, and dropped ones are deleted through the store. A handle is the
 * extent's key as the cursor service records it (`extents/<database>/<table>/<id>.parquet`);
 * DuckDB reads local files, so a remote store hands out local copies.
 */
export interface ExtentStore {
  /** The local file to write extent `handle` to (its folder exists); `publish` then makes it the extent. */
  writeTarget(handle: string): Promise<string>;
  /** Makes a written extent readable wherever the store is read; called before the extent is recorded. */
  publish(handle: string): Promise<void>;
  /**
   * Local files DuckDB reads these extents from, in the same order; NOT_FOUND-free: a missing
   * one is INTERNAL. They stay on this host until `release` is called (a cache may evict them after).
   */
  localFiles(handles: string[]): Promise<LocalExtentFiles>;
  /** Removes an extent; removing one that is not there is fine. */
  delete(handle: string): Promise<void>;
}

export interface LocalExtentFiles {
  files: string[];
  release(): void;
}

/** Extents as files under one local folder: the embedded default, one host. */
export class LocalExtentStore implements ExtentStore {
  constructor(readonly root: string) {}

  async writeTarget(handle: string): Promise<string> {
    const file = this.fileOf(handle);
    await mkdir(dirname(file), { recursive: true });
    return file;
  }

  async publish(handle: string): Promise<void> {
    // The written file is the extent already; only check that it is there.
    const found = await stat(this.fileOf(handle)).catch(() => undefined);
    if (!found?.isFile()) throw new SpillwayError(ErrorCode.internal, `extent ${handle} was not written`);
  }

  async localFiles(handles: string[]): Promise<LocalExtentFiles> {
    return { files: handles.map((h) => this.fileOf(h)), release: () => undefined };
  }

  async delete(handle: string): Promise<void> {
    await rm(this.fileOf(handle), { force: true });
  }

  private fileOf(handle: string): string {
    return extentFileUnder(this.root, handle);
  }
}

/** Where extent `handle` is under `root`: a handle names a file in the `extents` folder, never anything else on the host. */
export function extentFileUnder(root: string, handle: string): string {
  const file = join(root, handle);
  const inside = relative(join(root, "extents"), file);
  if (isAbsolute(handle) || inside === "" || inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) {
    throw invalidArgument(`extent handle '${handle}' is not in the extent store`);
  }
  return file;
}
