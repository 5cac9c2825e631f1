import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import type { ExtentStore } from "./extent-store.js";

/**
 * What every extent store must do (DESIGN "Scale-out": the local folder now, Azure Blob when
 * scaled out). `open` gives the store kept under `place`; a second store opened on the same
 * place (another process, another node) must read what the first published.
 */
export function extentStoreContract(implementation: string, open: (place: string) => Promise<ExtentStore>): void {
  describe(`extent store contract: ${implementation}`, () => {
    let dir: string;
    let store: ExtentStore;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "spillway-extents-"));
      store = await open(dir);
    });

    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    const write = async (s: ExtentStore, handle: string, content: string) => {
      await writeFile(await s.writeTarget(handle), content);
      await s.publish(handle);
    };

    it("reads back a published extent, also through another store on the same place, in the order asked", async () => {
      await write(store, "extents/db/T/a.parquet", "A");
      await write(store, "extents/db/T/b.parquet", "B");
      const other = await open(dir);
      const { files, release } = await other.localFiles(["extents/db/T/b.parquet", "extents/db/T/a.parquet"]);
      expect(await Promise.all(files.map((f) => readFile(f, "utf8")))).toEqual(["B", "A"]);
      release();
    });

    it("refuses to publish what was not written", async () => {
      await expect(store.publish("extents/db/T/never.parquet")).rejects.toMatchObject({ code: ErrorCode.internal });
    });

    it("deletes an extent, and deleting it again is fine", async () => {
      await write(store, "extents/db/T/a.parquet", "A");
      await store.delete("extents/db/T/a.parquet");
      await store.delete("extents/db/T/a.parquet");
      await expect(store.publish("extents/db/T/a.parquet")).rejects.toMatchObject({ code: ErrorCode.internal });
    });

    it("takes handles in its extents folder only", async () => {
      for (const bad of ["../x.parquet", "extents/../x.parquet", "/etc/passwd", "spool/x.parquet", "extents", "extents/"]) {
        await expect(store.writeTarget(bad)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
        await expect(store.localFiles([bad])).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
        await expect(store.delete(bad)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
      }
    });
  });
}
