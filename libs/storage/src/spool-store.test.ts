import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { LocalSpoolStore } from "./spool-store.js";
import { spoolStoreContract } from "./spool-store.contract.js";

spoolStoreContract("local folder", async (place) => new LocalSpoolStore(place));

/** Runs `test` in a fresh temporary folder, removed afterwards whatever happens. */
async function inTempDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "spillway-spool-"));
  try {
    await test(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

it("makes its root folder on the first create (a fresh data dir)", () =>
  inTempDir(async (dir) => {
    const store = new LocalSpoolStore(join(dir, "not", "yet"));
    expect(await readdir(await store.create("run-1"))).toEqual([]);
  }));

it("removes a discarded handle's files after answering: nothing of it is left in its folder", () =>
  inTempDir(async (dir) => {
    const store = new LocalSpoolStore(dir);
    await writeFile(join(await store.create("gone"), "data_0.parquet"), "x".repeat(1000));
    await store.create("live");
    await store.discard("gone");
    await expect.poll(async () => await readdir(dir), { timeout: 5000 }).toEqual(["live"]);
  }));

it("removes at start-up what a process that died left of a discarded handle, however recent", () =>
  inTempDir(async (dir) => {
    const store = new LocalSpoolStore(dir);
    await store.create("live");
    // As a discard leaves it when the process dies before the removal ends.
    await mkdir(join(dir, ".discarded-run-1-0b7d"), { recursive: true });
    await writeFile(join(dir, ".discarded-run-1-0b7d", "data_0.parquet"), "rows");
    await new LocalSpoolStore(dir).removeOlderThan(3_600_000);
    expect(await readdir(dir)).toEqual(["live"]);
  }));
