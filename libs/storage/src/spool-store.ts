import { randomUUID } from "node:crypto";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";
import { removeInBackground } from "./background-removal.js";

/**
 * Where a run's intermediate files live between two services (DESIGN "Scale-out"): the
 * query service's spool, the writer's stage. Callers hold a handle, never a path on a
 * shared disk; the store gives each caller a local folder to write in or read from. A
 * spool is durable until discarded, so a service restarted in between still finds it.
 */
export interface SpoolStore {
  /** An empty local folder for `handle` (whatever was there before is gone). */
  create(handle: string): Promise<string>;
  /** The local folder holding `handle`'s files; ABORTED when there is no such spool. */
  open(handle: string): Promise<string>;
  discard(handle: string): Promise<void>;
  /** Removes spools untouched for `ageMs`: no run is left to finish them. */
  removeOlderThan(ageMs: number, now?: number): Promise<void>;
}

/**
 * How long a spool or stage may sit untouched before it counts as abandoned: a run discards
 * its own when it ends, so one a day old belonged to a process that died meanwhile.
 */
export const ABANDONED_SPOOL_MS = 24 * 3600_000;

/** In a run's spool that is not encoded in one pass: its rows, as one Parquet file, for the writer to encode. */
export const ROWS_SPOOL_FILE = "rows.parquet";

/** Folders of discarded handles, until removed: a handle has no dot, so none is named so. */
const DISCARDED = ".discarded-";

/** A spool store in one local folder: the embedded default, one host. */
export class LocalSpoolStore implements SpoolStore {
  constructor(
    readonly root: string,
    /** What the handles name, for messages ("spool", "stage"). */
    private readonly what = "spool",
  ) {}

  async create(handle: string): Promise<string> {
    const folder = this.folderOf(handle);
    // One file-system call in the usual case (a new handle): a run's latency is mostly such steps (bench #3).
    const made = await mkdir(folder).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST" && err.code !== "ENOENT") throw err;
        return false;
      },
    );
    if (!made) {
      // A retry's leftovers, or no root folder yet.
      await rm(folder, { recursive: true, force: true });
      await mkdir(folder, { recursive: true });
    }
    return folder;
  }

  async open(handle: string): Promise<string> {
    const folder = this.folderOf(handle);
    const found = await stat(folder).catch(() => undefined);
    // Not permanent: the run's next attempt makes a new one.
    if (!found?.isDirectory()) throw new SpillwayError(ErrorCode.aborted, `${this.what} ${handle} does not exist (discarded, or never written); the run must be tried again`);
    return folder;
  }

  /**
   * The handle is gone when this returns (one rename); its files are removed afterwards, not
   * waited for: removing a folder file by file cost a small run 2 ms when a writer's upload
   * discarded its stage before answering (bench #3). They are removed in a thread
   * of their own (removeInBackground). What a process that died left half removed goes at
   * the next start (removeOlderThan).
   */
  async discard(handle: string): Promise<void> {
    const trash = join(this.root, `${DISCARDED}${handle}-${randomUUID()}`);
    try {
      await rename(this.folderOf(handle), trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    // Not the caller's failure: what stays is removed at the next start, and said meanwhile.
    void removeInBackground(trash, this.what);
  }

  async removeOlderThan(ageMs: number, now = Date.now()): Promise<void> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const folder = join(this.root, entry.name);
      const info = await stat(folder).catch(() => undefined);
      if (info && (entry.name.startsWith(DISCARDED) || info.mtimeMs < now - ageMs)) await rm(folder, { recursive: true, force: true });
    }
  }

  /** A handle is a plain name, never a path. */
  private folderOf(handle: string): string {
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(handle)) throw invalidArgument(`${this.what} handle '${handle}' is not a plain name`);
    return join(this.root, handle);
  }
}
