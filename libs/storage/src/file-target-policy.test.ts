import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { confineFileTarget, type FileTargetPolicy } from "./file-target-policy.js";
import { openConfinedStorageTarget } from "./storage-target.js";

// A real folder tree: base/lake is an allowed root, base/shared another that holds the data
// dir (as the OS temp folder holds a default data dir), base/outside is allowed by none.
let base: string;
let lake: string;
let shared: string;
let dataDir: string;
let outside: string;
let policy: FileTargetPolicy;

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), "file-target-policy-")));
  lake = join(base, "lake");
  shared = join(base, "shared");
  dataDir = join(shared, "spillway-data");
  outside = join(base, "outside");
  for (const dir of [join(lake, "real"), join(dataDir, "spool"), outside, join(base, "lakeX")]) await mkdir(dir, { recursive: true });
  await symlink(outside, join(lake, "escape"));
  await symlink(join(lake, "real"), join(lake, "alias"));
  await symlink(lake, join(base, "lake-link"));
  policy = { roots: [lake, shared], dataDir };
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function refusal(path: string, p: FileTargetPolicy = policy): Promise<string> {
  const err = await confineFileTarget(path, p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${path} should be refused`).toMatchObject({ code: ErrorCode.invalidArgument });
  return (err as Error).message;
}

describe("confineFileTarget", () => {
  it("allows a folder inside a root, existing or not yet, and returns its real path", async () => {
    expect(await confineFileTarget(join(lake, "real"), policy)).toBe(join(lake, "real"));
    expect(await confineFileTarget(join(lake, "new/deeper"), policy)).toBe(join(lake, "new/deeper"));
    expect(await confineFileTarget(lake, policy)).toBe(lake);
    expect(await confineFileTarget(`${lake}/./real/`, policy)).toBe(join(lake, "real"));
  });

  it("follows a symlink that stays inside a root, and a root that is itself a symlink", async () => {
    expect(await confineFileTarget(join(lake, "alias/x"), policy)).toBe(join(lake, "real/x"));
    expect(await confineFileTarget(join(lake, "real/x"), { roots: [join(base, "lake-link")], dataDir })).toBe(join(lake, "real/x"));
  });

  it("allows a folder beside the data dir in a root that holds it", async () => {
    expect(await confineFileTarget(join(shared, "lake"), policy)).toBe(join(shared, "lake"));
  });

  it("refuses system folders, naming the allowed roots", async () => {
    for (const path of ["/etc", "/etc/cron.d", "/root", "/root/lake"]) {
      const message = await refusal(path);
      expect(message).toContain(lake);
      expect(message).toContain(shared);
    }
  });

  it("refuses the data dir and anything inside it", async () => {
    expect(await refusal(dataDir)).toMatch(/inside Spillway's data directory/);
    expect(await refusal(join(dataDir, "spool"))).toMatch(/inside Spillway's data directory/);
    expect(await refusal(join(dataDir, "not-yet/lake"))).toMatch(/inside Spillway's data directory/);
  });

  it("refuses a folder that contains the data dir, even a root itself", async () => {
    expect(await refusal(shared)).toMatch(/contains Spillway's data directory/);
    expect(await refusal(base)).toMatch(/contains Spillway's data directory/);
    expect(await refusal("/")).toMatch(/contains Spillway's data directory/);
  });

  it("refuses '..' instead of normalizing it, even when it would land inside a root", async () => {
    expect(await refusal(`${lake}/../outside`)).toMatch(/'\.\.'/);
    expect(await refusal(`${lake}/real/../alias`)).toMatch(/'\.\.'/);
  });

  it("refuses a relative path", async () => {
    expect(await refusal("lake/x")).toMatch(/not an absolute path/);
  });

  it("refuses a symlink inside a root that points outside it, and anything under it", async () => {
    expect(await refusal(join(lake, "escape"))).toContain(`resolves to '${outside}'`);
    expect(await refusal(join(lake, "escape/new/folder"))).toContain(`resolves to '${join(outside, "new/folder")}'`);
  });

  it("compares whole path segments: a sibling sharing the root's prefix is outside", async () => {
    expect(await refusal(join(base, "lakeX"))).toMatch(/outside the folders allowed/);
    expect(await refusal(join(base, "lakeX/y"))).toMatch(/outside the folders allowed/);
  });

  it("refuses everything when no roots are configured, saying how to allow some", async () => {
    expect(await refusal(join(lake, "real"), { roots: [], dataDir })).toMatch(/no folders are configured.*SPILLWAY_FILE_TARGET_ROOTS/);
  });
});

describe("openConfinedStorageTarget", () => {
  it("refuses a folder outside the roots when opened", async () => {
    await expect(openConfinedStorageTarget({ kind: "folder", path: outside }, policy)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
  });

  it("checks every write again: a symlink swapped in after opening is refused, nothing lands outside", async () => {
    const folder = join(lake, "swapped");
    const target = await openConfinedStorageTarget({ kind: "folder", path: folder }, policy);
    await target.putOverwrite("day=1/a.txt", Buffer.from("a"));
    expect(await target.read("day=1/a.txt")).toEqual(Buffer.from("a"));

    await symlink(outside, join(folder, "day=2"));
    await expect(target.putOverwrite("day=2/b.txt", Buffer.from("b"))).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
    await expect(target.putIfAbsent("day=2/b.txt", Buffer.from("b"))).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
    const local = join(base, "local.txt");
    await writeFile(local, "c");
    await expect(target.put("day=2/c.txt", local)).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
    await expect(target.delete("day=2/c.txt")).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
    expect(await readdir(outside)).toEqual([]);

    await rm(folder, { recursive: true });
    await symlink(outside, folder);
    await expect(target.ensureExists()).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
    await expect(target.list()).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
  });

  it("refuses an artifact name with '..'", async () => {
    const target = await openConfinedStorageTarget({ kind: "folder", path: join(lake, "names") }, policy);
    await expect(target.putOverwrite("a/../../../outside/x", Buffer.from("x"))).rejects.toMatchObject({ code: ErrorCode.invalidArgument });
  });
});
