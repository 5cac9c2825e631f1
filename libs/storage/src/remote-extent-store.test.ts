import { AsyncLocalStorage } from "node:async_hooks";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { useAzurite, type Azurite } from "../../../test/support/azurite.js";
import { parseConnectionString } from "./connection-string.js";
import { extentStoreContract } from "./extent-store.contract.js";
import { RemoteExtentStore } from "./remote-extent-store.js";
import { openStorageTarget } from "./storage-target.js";

const MB = 1024 * 1024;
let cacheCount = 0;
// Every store opened on a place is another node: the shared storage is the place's, the cache its own.
const cacheOf = (place: string) => join(place, `cache-${++cacheCount}`);

extentStoreContract("shared folder through a local cache", async (place) =>
  RemoteExtentStore.open(openStorageTarget({ kind: "folder", path: join(place, "shared") }), cacheOf(place), 64 * MB),
);

describe("extent store on Azure Blob (Azurite)", () => {
  let azurite: Azurite;
  beforeAll(async () => {
    azurite = await useAzurite();
  });
  afterAll(() => azurite?.stop());

  const containers = new Map<string, string>();
  extentStoreContract("Azure Blob through a local cache", async (place) => {
    if (!containers.has(place)) containers.set(place, `extents-${containers.size}-${Date.now().toString(36)}`);
    return RemoteExtentStore.open(openStorageTarget(parseConnectionString(azurite.connectionString(`${containers.get(place)}/cluster1`))), cacheOf(place), 64 * MB);
  });

  it("keeps the most recently used extents within its bound, never evicting one a query is reading", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-extent-cache-"));
    try {
      const remote = openStorageTarget(parseConnectionString(azurite.connectionString(`extents-lru-${Date.now().toString(36)}`)));
      const writer = await RemoteExtentStore.open(remote, join(dir, "writer"), 64 * MB);
      const handles = ["a", "b", "c", "d"].map((n) => `extents/db/T/${n}.parquet`);
      for (const [i, h] of handles.entries()) {
        await writeFile(await writer.writeTarget(h), Buffer.alloc(1000, 65 + i));
        await writer.publish(h);
      }
      // Room for two extents of 1000 bytes.
      const reader = await RemoteExtentStore.open(remote, join(dir, "reader"), 2500);
      const cachedNames = async () => (await readdir(join(dir, "reader/extents/db/T"))).filter((f) => !f.startsWith(".")).sort();

      const ab = await reader.localFiles([handles[0]!, handles[1]!]);
      expect((await readFile(ab.files[1]!)).subarray(0, 1).toString()).toBe("B");
      ab.release();
      (await reader.localFiles([handles[0]!])).release(); // a is used again: b is now the least recent
      const c = await reader.localFiles([handles[2]!]);
      expect(await cachedNames()).toEqual(["a.parquet", "c.parquet"]);
      expect(reader.cacheBytes).toBe(2000);

      // c is pinned by a query: reading d too goes over the bound rather than evict c under it.
      const d = await reader.localFiles([handles[3]!]);
      expect(await cachedNames()).toEqual(["c.parquet", "d.parquet"]);
      expect((await readFile(c.files[0]!)).subarray(0, 1).toString()).toBe("C");
      c.release();
      d.release();

      // Dropped everywhere: the next read of it fails as INTERNAL, not as an empty table.
      await writer.delete(handles[3]!);
      await reader.delete(handles[3]!);
      await expect(reader.localFiles([handles[3]!])).rejects.toMatchObject({ code: ErrorCode.internal, message: expect.stringContaining("missing from the extent store") });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses to start on storage it cannot reach, as UNAVAILABLE, without the key in the message", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-extent-cache-"));
    try {
      const key = "c2VjcmV0LWtleS1ub3QtdG8tYmUtc2hvd24=";
      const remote = openStorageTarget(parseConnectionString(`http://127.0.0.1:1/devstoreaccount1/extents;${key}`));
      const err = (await RemoteExtentStore.open(remote, join(dir, "cache"), MB).then(() => new Error("opened"), (e: unknown) => e)) as Error & { code: ErrorCode };
      expect(err).toMatchObject({ code: ErrorCode.unavailable });
      expect(err.message).not.toContain(key);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("extent cache, on a shared folder", () => {
  /** A writer publishing `names` to a shared folder, a reader with its own cache over it. */
  async function published(dir: string, names: string[], reader: { bytes: number; entries?: number }) {
    const shared = openStorageTarget({ kind: "folder", path: join(dir, "shared") });
    const writer = await RemoteExtentStore.open(shared, join(dir, "writer"), 64 * MB);
    const handles = names.map((n) => `extents/db/T/${n}.parquet`);
    for (const h of handles) {
      await writeFile(await writer.writeTarget(h), Buffer.alloc(100, 65));
      await writer.publish(h);
    }
    return { writer, handles, reader: await RemoteExtentStore.open(shared, join(dir, "reader"), reader.bytes, reader.entries) };
  }

  it("keeps no more extents than its count bound, however small they are", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-extent-cache-"));
    try {
      const { reader, handles } = await published(dir, ["a", "b", "c"], { bytes: 64 * MB, entries: 2 });
      for (const h of handles) (await reader.localFiles([h])).release();
      expect((await readdir(join(dir, "reader/extents/db/T"))).filter((f) => !f.startsWith(".")).sort()).toEqual(["b.parquet", "c.parquet"]);
      expect(reader.cacheBytes).toBe(200);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("holds nothing of the calls that published or read its extents: a cached extent may stay for days", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spillway-extent-cache-"));
    try {
      const { writer, reader, handles } = await published(dir, ["a"], { bytes: 64 * MB });
      // A call's async context, as a trace's span is held in it (OpenTelemetry's context
      // manager). On Node 20 every promise made in a call holds it; later Node versions keep
      // it elsewhere, where this passes either way.
      const context = new AsyncLocalStorage<object>();
      const seen = await context.run({ span: "the publishing call" }, async () => {
        const held = new WeakRef(context.getStore()!);
        await writeFile(await writer.writeTarget("extents/db/T/b.parquet"), Buffer.alloc(100, 66));
        await writer.publish("extents/db/T/b.parquet");
        return held;
      });
      const read = await context.run({ span: "the reading call" }, async () => {
        const held = new WeakRef(context.getStore()!);
        (await reader.localFiles(handles)).release();
        return held;
      });
      await new Promise((r) => setImmediate(r));
      setFlagsFromString("--expose-gc");
      (runInNewContext("gc") as () => void)();
      expect(seen.deref()).toBeUndefined();
      expect(read.deref()).toBeUndefined();
      expect(reader.cacheBytes).toBe(100);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
