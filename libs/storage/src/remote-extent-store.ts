import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import type { ExtentStore, LocalExtentFiles } from "./extent-store.js";
import { extentFileUnder } from "./extent-store.js";
import type { StorageTarget } from "./storage-target.js";

/**
 * What a cached extent holds once its file is here. Made at load, outside any call: a promise
 * made in a call keeps that call's async context (its trace's spans among it) for as long as
 * the promise lives, and an extent may stay cached for days: heap snapshots of nodes found one
 * span kept per extent ingested or read.
 */
const READY = Promise.resolve();

/** Extents the cache keeps at most, however small: each costs memory, and a file here. */
export const MAX_CACHED_EXTENTS = 100_000;

interface CachedExtent {
  /** Settles once the file is on this host (written here, or downloaded); READY after that. */
  ready: Promise<void>;
  size: number;
  /** Queries reading it now: it is not evicted while any are. */
  pins: number;
}

/**
 * Extents in shared storage (Azure Blob, or a folder every node mounts) for nodes that
 * export together (DESIGN "Scale-out"): every node publishes there, and reads through a
 * bounded local cache, since DuckDB reads local files only here. The cache keeps the most
 * recently used extents up to `maxCacheBytes` and `maxEntries`; one a query is reading is never
 * evicted under them, so the cache may exceed the bounds while a query holds more than that.
 */
export class RemoteExtentStore implements ExtentStore {
  /** In least-recently-used order: a use moves the entry to the end. */
  private readonly cached = new Map<string, CachedExtent>();
  /** Files being removed from the cache, by handle: a new copy of one waits until its old one is gone. */
  private readonly removing = new Map<string, Promise<void>>();
  private cachedBytes = 0;

  private constructor(
    private readonly remote: StorageTarget,
    private readonly cacheDir: string,
    private readonly maxCacheBytes: number,
    private readonly maxEntries: number,
  ) {}

  /**
   * Keeps copies under `<cacheDir>/extents`, where the local store would keep the extents
   * themselves (DuckDB's sandbox allows reading there), emptied first: what a previous life
   * left there may be stale or partial.
   */
  static async open(remote: StorageTarget, cacheDir: string, maxCacheBytes: number, maxEntries = MAX_CACHED_EXTENTS): Promise<RemoteExtentStore> {
    await rm(join(cacheDir, "extents"), { recursive: true, force: true });
    await mkdir(join(cacheDir, "extents"), { recursive: true });
    await storageCall("open the extent store", () => remote.ensureExists());
    return new RemoteExtentStore(remote, cacheDir, maxCacheBytes, maxEntries);
  }

  async writeTarget(handle: string): Promise<string> {
    const file = extentFileUnder(this.cacheDir, handle);
    await mkdir(dirname(file), { recursive: true });
    return file;
  }

  async publish(handle: string): Promise<void> {
    const file = extentFileUnder(this.cacheDir, handle);
    const found = await stat(file).catch(() => undefined);
    if (!found?.isFile()) throw new SpillwayError(ErrorCode.internal, `extent ${handle} was not written`);
    await storageCall(`publish extent ${handle}`, () => this.remote.put(handle, file));
    // Just written here: the first queries of it need no download.
    this.forget(handle);
    this.cached.set(handle, { ready: READY, size: found.size, pins: 0 });
    this.cachedBytes += found.size;
    await this.evict();
  }

  async localFiles(handles: string[]): Promise<LocalExtentFiles> {
    const files = handles.map((h) => extentFileUnder(this.cacheDir, h));
    const pinned: CachedExtent[] = [];
    const release = () => {
      for (const entry of pinned.splice(0)) entry.pins--;
      void this.evict();
    };
    try {
      for (const handle of new Set(handles)) {
        const entry = this.cached.get(handle) ?? this.download(handle);
        this.cached.delete(handle);
        this.cached.set(handle, entry);
        entry.pins++;
        pinned.push(entry);
      }
      await Promise.all(pinned.map((e) => e.ready));
    } catch (err) {
      release();
      throw err;
    }
    await this.evict();
    return { files, release };
  }

  async delete(handle: string): Promise<void> {
    await storageCall(`delete extent ${handle}`, () => this.remote.delete(handle));
    this.forget(handle);
    await this.removeCopy(handle);
  }

  /** Bytes held in the cache now (for tests and metrics). */
  get cacheBytes(): number {
    return this.cachedBytes;
  }

  private download(handle: string): CachedExtent {
    const file = extentFileUnder(this.cacheDir, handle);
    const entry: CachedExtent = { size: 0, pins: 0, ready: READY };
    const downloading = (async () => {
      await this.removing.get(handle);
      await mkdir(dirname(file), { recursive: true });
      // Aside first: a query never reads a file still being downloaded.
      const partial = join(dirname(file), `.${randomUUID()}.partial`);
      try {
        const found = await storageCall(`read extent ${handle}`, () => this.remote.download(handle, partial));
        if (!found) throw new SpillwayError(ErrorCode.internal, `extent ${handle} is missing from the extent store`);
        const size = (await stat(partial)).size;
        // Deleted (or replaced) meanwhile: this copy must not appear, nor be counted.
        if (this.cached.get(handle) !== entry) throw new SpillwayError(ErrorCode.internal, `extent ${handle} was deleted while it was being read`);
        await rename(partial, file);
        if (this.cached.get(handle) !== entry) {
          await rm(file, { force: true });
          throw new SpillwayError(ErrorCode.internal, `extent ${handle} was deleted while it was being read`);
        }
        entry.size = size;
        this.cachedBytes += size;
        entry.ready = READY;
      } catch (err) {
        await rm(partial, { force: true });
        if (this.cached.get(handle) === entry) this.cached.delete(handle);
        throw err;
      }
    })();
    // Until it settles (then READY, above): waited on by every query that pins it, whose
    // failure it is to report.
    entry.ready = downloading;
    downloading.catch(() => undefined);
    return entry;
  }

  private forget(handle: string): void {
    const entry = this.cached.get(handle);
    if (!entry) return;
    this.cached.delete(handle);
    this.cachedBytes -= entry.size;
  }

  private async evict(): Promise<void> {
    for (const [handle, entry] of this.cached) {
      if (this.cachedBytes <= this.maxCacheBytes && this.cached.size <= this.maxEntries) return;
      // One still downloading is not counted yet, and its file not there to remove.
      if (entry.pins > 0 || entry.ready !== READY) continue;
      this.forget(handle);
      await this.removeCopy(handle);
    }
  }

  /** Removes the cached file of `handle`; a download of it that starts meanwhile waits for this. */
  private async removeCopy(handle: string): Promise<void> {
    const removal = rm(extentFileUnder(this.cacheDir, handle), { force: true }).finally(() => {
      if (this.removing.get(handle) === removal) this.removing.delete(handle);
    });
    this.removing.set(handle, removal);
    await removal;
  }
}

/** Storage failures as retryable UNAVAILABLE (or what they are), never a bare SDK error. */
async function storageCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof SpillwayError) throw err;
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (e.statusCode === 403 || e.statusCode === 401) throw new SpillwayError(ErrorCode.permissionDenied, `cannot ${what}: extent store access denied (${e.code ?? e.statusCode})`);
    throw new SpillwayError(ErrorCode.unavailable, `cannot ${what}: ${e.message ?? String(err)}`);
  }
}
