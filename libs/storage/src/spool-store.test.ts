import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { LocalSpoolStore } from "./spool-store.js";
import { spoolStoreContract } from "./spool-store.contract.js";

spoolStoreContract("local folder", async (place) => new LocalSpoolStore(place));

it("makes its root folder on the first create (a fresh data dir)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "spillway-spool-"));
  try {
    const store = new LocalSpoolStore(join(dir, "not", "yet"));
    expect(await readdir(await store.create("run-1"))).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
