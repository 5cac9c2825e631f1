import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { ingestBudget, isGzip, keepWithin, takeFile } from "./ingest-budget.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ingest-budget-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const from = (...chunks: Buffer[]) => Readable.from(chunks);

describe("keepWithin", () => {
  it("keeps a file as it comes and a gzip file unpacked, counting what it wrote against one budget", async () => {
    const budget = ingestBudget(100, 10);
    await keepWithin(from(Buffer.from("Id\n1\n")), join(dir, "plain.csv"), "plain.csv", budget, { gunzip: false });
    await keepWithin(from(gzipSync("Id\n2\n3\n")), join(dir, "packed.csv"), "packed.csv.gz", budget, { gunzip: true });
    expect(await readFile(join(dir, "plain.csv"), "utf8")).toBe("Id\n1\n");
    expect(await readFile(join(dir, "packed.csv"), "utf8")).toBe("Id\n2\n3\n");
    // Read: the plain file, then the gzip file as it came; kept: the plain file, then the gzip file unpacked.
    expect(budget.readLeft).toBe(100 - 5 - gzipSync("Id\n2\n3\n").length);
    expect(budget.keptLeft).toBe(100 - 5 - 7);
  });

  it("refuses gzip that unpacks past the budget, however small it is packed, and a budget spent over several files", async () => {
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    await expect(keepWithin(from(bomb), join(dir, "bomb.csv"), "bomb.csv.gz", ingestBudget(1024 * 1024, 10), { gunzip: true })).rejects.toMatchObject({
      code: ErrorCode.resourceExhausted,
      message: expect.stringContaining("the files of the call, gzip unpacked, come to more than the 1048576 bytes one call may ingest (--max-ingest-size)"),
    });
    // Nor does gzip that unpacks to nothing escape the budget: its packed bytes count as read.
    const empties = Buffer.concat(Array.from({ length: 200 }, () => gzipSync(Buffer.alloc(0))));
    await expect(keepWithin(from(empties), join(dir, "empties.csv"), "empties.csv.gz", ingestBudget(1000, 10), { gunzip: true })).rejects.toMatchObject({
      code: ErrorCode.resourceExhausted,
      message: expect.stringContaining("the sources of the call come to more than the 1000 bytes"),
    });
    // A file only read here (an archive) counts as read, not as kept.
    const archiveBudget = ingestBudget(100, 10);
    await keepWithin(from(Buffer.alloc(60)), join(dir, "archive.zip"), "a.zip", archiveBudget, { gunzip: false, kept: false });
    expect([archiveBudget.readLeft, archiveBudget.keptLeft]).toEqual([40, 100]);
    const shared = ingestBudget(10, 10);
    await keepWithin(from(Buffer.from("123456")), join(dir, "first"), "first", shared, { gunzip: false });
    await expect(keepWithin(from(Buffer.from("123456")), join(dir, "second"), "second", shared, { gunzip: false })).rejects.toMatchObject({ code: ErrorCode.resourceExhausted });
  });

  it("says whose fault a failure is: bad gzip is the caller's, a source breaking off or a local write failing is not", async () => {
    await expect(keepWithin(from(Buffer.from("not gzip at all")), join(dir, "bad"), "bad.csv.gz", ingestBudget(100, 1), { gunzip: true })).rejects.toMatchObject({
      code: ErrorCode.invalidArgument,
      message: expect.stringContaining("'bad.csv.gz' is not gzip data that can be read"),
    });
    const breaking = new Readable({
      read() {
        this.push(Buffer.from("Id\n"));
        this.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      },
    });
    await expect(keepWithin(breaking, join(dir, "cut"), "cut.csv", ingestBudget(100, 1), { gunzip: false })).rejects.toMatchObject({ code: ErrorCode.unavailable, message: expect.stringContaining("'cut.csv' could not be read to its end (ECONNRESET)") });
    await expect(keepWithin(from(Buffer.from("x")), join(dir, "no-such-folder", "f"), "f.csv", ingestBudget(100, 1), { gunzip: false })).rejects.toMatchObject({ code: ErrorCode.unavailable, message: expect.stringContaining("could not keep 'f.csv' here: ENOENT") });
  });
});

describe("takeFile and isGzip", () => {
  it("counts files, and reads gzip from a name's ending before any query or key", () => {
    const budget = ingestBudget(100, 2);
    takeFile(budget);
    takeFile(budget);
    expect(() => takeFile(budget)).toThrow(expect.objectContaining({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("more than the 2 files") }));
    expect(["a.csv.gz", "https://acct.blob.core.windows.net/c/a.csv.GZ?sv=1", "file:///x/a.gz;key", "a.gzip", "a.gz.csv"].map(isGzip)).toEqual([true, true, true, false, false]);
  });
});
