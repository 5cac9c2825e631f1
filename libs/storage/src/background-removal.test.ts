import { access, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
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

it("says which folder it could not remove, and does not reject", async () => {
  const said = vi.spyOn(console, "error").mockImplementation(() => undefined);
  // A file where a folder's entry would be removed: rmSync of a path under a file fails with ENOTDIR.
  await writeFile(join(dir, "file"), "x");
  await expect(removeInBackground(join(dir, "file", "below"), "stage")).resolves.toBeUndefined();
  expect(said).toHaveBeenCalledWith(expect.stringContaining(`a discarded stage folder (${join(dir, "file", "below")}) was not removed`));
  await access(join(dir, "file"));
});
