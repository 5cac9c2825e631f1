import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import { ErrorCode } from "@spillway/errors";
import { extractZipEntries, zipEntryMatcher } from "./zip-entries.js";
import { ingestBudget } from "./ingest-budget.js";

// Real archives written by yazl, read back through yauzl into real files.

let dir: string;

/** Writes a zip archive of `files` (path → content) and says where. */
async function archive(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const [path, content] of Object.entries(files)) zip.addBuffer(Buffer.from(content), path);
  zip.end();
  const file = join(dir, name);
  await new Promise<void>((resolve, reject) => zip.outputStream.pipe(createWriteStream(file)).on("close", resolve).on("error", reject));
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zip-entries-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("zipEntryMatcher", () => {
  it("reads a regular expression as one, and Kusto's glob examples as globs over the whole path", () => {
    const regex = zipEntryMatcher("\\.csv(\\.gz)?$");
    expect(["a.csv", "sub/b.csv.gz", "c.txt", "a.csvx"].filter(regex)).toEqual(["a.csv", "sub/b.csv.gz"]);
    const glob = zipEntryMatcher("*.csv");
    expect(["a.csv", "sub/b.csv", "b.csv.gz", "acsv"].filter(glob)).toEqual(["a.csv", "sub/b.csv"]);
    expect(["x", "y/z"].filter(zipEntryMatcher(""))).toEqual(["x", "y/z"]);
  });

  it("refuses a pattern that is neither", () => {
    expect(() => zipEntryMatcher("(unclosed")).toThrow(expect.objectContaining({ code: ErrorCode.invalidArgument, message: expect.stringContaining("zipPattern '(unclosed' is not a regular expression") }));
  });
});

describe("extractZipEntries", () => {
  it("extracts the files the pattern keeps, in the archive's order, to the files it is given", async () => {
    const zip = await archive("a.zip", { "a.csv": "1\n2\n", "notes.txt": "skip me", "sub/b.csv": "3\n" });
    const written: string[] = [];
    const paths = await extractZipEntries(zip, "a.zip", zipEntryMatcher("*.csv"), (path) => {
      const file = join(dir, `out-${written.length}`);
      written.push(file);
      return file;
    }, ingestBudget(1 << 20, 10));
    expect(paths).toEqual(["a.csv", "sub/b.csv"]);
    expect(await Promise.all(written.map((f) => readFile(f, "utf8")))).toEqual(["1\n2\n", "3\n"]);
  });

  it("stops at the byte and file limits of the whole call, counting the bytes as they come out", async () => {
    const zip = await archive("big.zip", { "a.csv": "x".repeat(10_000), "b.csv": "y".repeat(10_000) });
    await expect(extractZipEntries(zip, "big.zip", () => true, (p) => join(dir, `big-${p}`), ingestBudget(15_000, 10))).rejects.toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("more than the 15000 bytes") });
    // Two archives of one call share the budget: each fits, both do not.
    const budget = ingestBudget(15_000, 10);
    const small = await archive("small.zip", { "a.csv": "x".repeat(10_000) });
    await extractZipEntries(small, "small.zip", () => true, (p) => join(dir, `s1-${p}`), budget);
    await expect(extractZipEntries(small, "small.zip", () => true, (p) => join(dir, `s2-${p}`), budget)).rejects.toMatchObject({ code: ErrorCode.resourceExhausted });
    const many = await archive("many.zip", Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`${i}.csv`, ""])));
    await expect(extractZipEntries(many, "many.zip", () => true, (p) => join(dir, `m-${p}`), ingestBudget(1 << 20, 4))).rejects.toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("more than the 4 files") });
  });

  it("unpacks a .gz file of the archive, counting its unpacked bytes, and refuses one that is not gzip", async () => {
    const zip = await archive("gz.zip", { "a.csv.gz": gzipSync("Id\n1\n"), "bomb.csv.gz": gzipSync(Buffer.alloc(4 * 1024 * 1024)), "bad.csv.gz": "plain text" });
    const budget = ingestBudget(1 << 20, 10);
    expect(await extractZipEntries(zip, "gz.zip", (p) => p === "a.csv.gz", () => join(dir, "gz-a.csv"), budget)).toEqual(["a.csv.gz"]);
    expect(await readFile(join(dir, "gz-a.csv"), "utf8")).toBe("Id\n1\n");
    expect(budget.keptLeft).toBe((1 << 20) - 5);
    // Packed, it is a few kilobytes, far below the budget: unpacked, it is four times the budget.
    await expect(extractZipEntries(zip, "gz.zip", (p) => p === "bomb.csv.gz", () => join(dir, "gz-bomb.csv"), budget)).rejects.toMatchObject({ code: ErrorCode.resourceExhausted });
    await expect(extractZipEntries(zip, "gz.zip", (p) => p === "bad.csv.gz", () => join(dir, "gz-bad.csv"), ingestBudget(1 << 20, 10))).rejects.toMatchObject({
      code: ErrorCode.invalidArgument,
      message: expect.stringContaining("'bad.csv.gz' in 'gz.zip' is not gzip data that can be read"),
    });
  });

  it("reports this machine's trouble writing the files as its own, not as a bad archive", async () => {
    const zip = await archive("ok.zip", { "a.csv": "1\n" });
    await expect(extractZipEntries(zip, "ok.zip", () => true, () => join(dir, "no-such-folder", "a.csv"), ingestBudget(1 << 20, 10))).rejects.toMatchObject({ code: ErrorCode.unavailable, message: expect.stringContaining("ENOENT") });
  });

  it("refuses a file that is not a zip archive", async () => {
    const file = join(dir, "not.zip");
    await writeFile(file, "Id\n1\n");
    await expect(extractZipEntries(file, "not.zip", () => true, (p) => join(dir, p), ingestBudget(1 << 20, 10))).rejects.toMatchObject({ code: ErrorCode.invalidArgument, message: expect.stringContaining("'not.zip' is not a zip archive that can be read") });
  });
});
