import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import type { SpoolStore } from "./spool-store.js";

/**
 * What every spool store must do (DESIGN "Scale-out": the local folder now, Azure Blob when
 * scaled out). `open` gives the store kept under `place`; opening the same place again, as a
 * restarted service does, must find what was written there.
 */
export function spoolStoreContract(implementation: string, open: (place: string) => Promise<SpoolStore>): void {
  describe(`spool store contract: ${implementation}`, () => {
    let dir: string;
    let store: SpoolStore;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "spillway-spool-"));
      store = await open(dir);
    });

    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("gives back what was written under a handle, also to a store opened later on the same place", async () => {
      const folder = await store.create("run-1");
      await writeFile(join(folder, "data_0.parquet"), "rows");
      const reopened = await open(dir);
      const read = await reopened.open("run-1");
      expect(await readdir(read)).toEqual(["data_0.parquet"]);
      expect(await readFile(join(read, "data_0.parquet"), "utf8")).toBe("rows");
    });

    it("starts a handle empty when it is created again (a retried attempt)", async () => {
      await writeFile(join(await store.create("run-1"), "old"), "x");
      expect(await readdir(await store.create("run-1"))).toEqual([]);
    });

    it("keeps handles apart", async () => {
      await writeFile(join(await store.create("a"), "f"), "a");
      await writeFile(join(await store.create("b"), "f"), "b");
      await store.discard("a");
      expect(await readFile(join(await store.open("b"), "f"), "utf8")).toBe("b");
      await expect(store.open("a")).rejects.toMatchObject({ code: ErrorCode.aborted });
    });

    it("refuses to open a handle never written, as retryable (the run is tried again)", async () => {
      await expect(store.open("never")).rejects.toMatchObject({ code: ErrorCode.aborted, message: expect.stringContaining("never") });
    });

    it("takes plain names only: a handle is never a path", async () => {
      for (const bad of ["../x", "a/b", "", ".", "x".repeat(81)]) {
        await expect(store.create(bad)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
        await expect(store.discard(bad)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
      }
    });

    it("discarding twice, or what never was, is fine", async () => {
      await store.create("x");
      await store.discard("x");
      await store.discard("x");
      await store.discard("nothing");
    });

    it("forgets a discarded handle at once; a handle created again starts empty", async () => {
      await writeFile(join(await store.create("gone"), "f"), "x".repeat(1000));
      await store.discard("gone");
      await expect(store.open("gone")).rejects.toMatchObject({ code: ErrorCode.aborted });
      expect(await readdir(await store.create("gone"))).toEqual([]);
    });

    it("removes only spools older than the age given", async () => {
      const old = await store.create("old");
      await store.create("fresh");
      const dayAgo = new Date(Date.now() - 86_400_000);
      await utimes(old, dayAgo, dayAgo);
      await store.removeOlderThan(3_600_000);
      await expect(store.open("old")).rejects.toMatchObject({ code: ErrorCode.aborted });
      await expect(store.open("fresh")).resolves.toBeTypeOf("string");
    });
  });
}
