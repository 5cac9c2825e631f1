import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
