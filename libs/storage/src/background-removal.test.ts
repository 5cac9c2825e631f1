import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { removeInBackground } from "./background-removal.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spillway-removal-"));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

it("removes a folder and what is in it, answering once it is gone", async () => {
  const folder = join(dir, "trash");
  await mkdir(join(folder, "nested"), { recursive: true });
  await writeFile(join(folder, "data_0.parquet"), "rows");
  await writeFile(join(folder, "nested", "data_1.parquet"), "rows");
  await mkdir(join(dir, "kept"));
  await removeInBackground(folder, "spool");
  expect(await readdir(dir)).toEqual(["kept"]);
});

it("removes many folders asked for at once, each answered", async () => {
  const folders = Array.from({ length: 20 }, (_, i) => join(dir, `t${i}`));
  for (const f of folders) await writeFile(join(await mkdir(f, { recursive: true }).then(() => f), "x"), "x");
  await Promise.all(folders.map((f) => removeInBackground(f, "stage")));
  expect(await readdir(dir)).toEqual([]);
});

// A name longer than the file system allows: refused (ENAMETOOLONG) even to a remover that ignores what is missing.
const unremovable = () => join(dir, "x".repeat(300));

it("says which folder it could not remove, and does not reject", async () => {
  const said = vi.spyOn(console, "error").mockImplementation(() => undefined);
  await expect(removeInBackground(unremovable(), "stage")).resolves.toBeUndefined();
  expect(said).toHaveBeenCalledWith(expect.stringContaining(`a discarded stage folder (${unremovable()}) was not removed`));
});

it("removes the folder itself when no thread can be started, and says what it could not remove", async () => {
  vi.resetModules();
  let tried = 0;
  vi.doMock("node:worker_threads", () => ({
    Worker: class {
      constructor() {
        tried++;
        throw Object.assign(new Error("no thread"), { code: "ERR_WORKER_INIT_FAILED" });
      }
    },
  }));
  try {
    const { removeInBackground: withoutThreads } = await import("./background-removal.js");
    const folder = join(dir, "trash");
    await mkdir(folder);
    await writeFile(join(folder, "data_0.parquet"), "rows");
    await withoutThreads(folder, "spool");
    expect(tried).toBe(1);
    expect(await readdir(dir)).toEqual([]);
    const said = vi.spyOn(console, "error").mockImplementation(() => undefined);
    await expect(withoutThreads(unremovable(), "spool")).resolves.toBeUndefined();
    expect(said).toHaveBeenCalledWith(expect.stringContaining("a discarded spool folder"));
  } finally {
    vi.doUnmock("node:worker_threads");
    vi.resetModules();
  }
});
