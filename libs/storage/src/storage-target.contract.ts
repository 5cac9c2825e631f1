import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StorageTarget } from "./storage-target.js";

/** The whole of a stream, or undefined for none. */
async function drained(stream: NodeJS.ReadableStream | undefined): Promise<Buffer | undefined> {
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/**
 * What every place artifacts are written to must do alike (a local folder, a blob container
 * folder): the writer, the Delta log and ingestion by reference rely on it. `open` gives a
 * new, empty target on each call; `reportsMd5OnPut`: whether an upload's answer has the MD5
 * (Blob Storage's does; a folder's has none, and `md5` reads the file).
 */
export function storageTargetContract(name: string, open: () => Promise<StorageTarget>, reportsMd5OnPut: boolean): void {
  describe(`storage target contract (${name})`, () => {
    let target: StorageTarget;
    let local: string;

    beforeEach(async () => {
      target = await open();
      await target.ensureExists();
      local = await mkdtemp(join(tmpdir(), "spillway-target-contract-"));
    });
    afterEach(() => rm(local, { recursive: true, force: true }));

    it("gives back what was put, read whole, as a stream or into a local file", async () => {
      const body = Buffer.from("a,b\n1,2\n".repeat(1000));
      await writeFile(join(local, "up.csv"), body);
      const { path } = await target.put("day=1/part-0.csv", join(local, "up.csv"));
      expect(path).toBe(target.pathOf("day=1/part-0.csv"));
      expect(await target.read("day=1/part-0.csv")).toEqual(body);
      expect(await drained(await target.openRead("day=1/part-0.csv"))).toEqual(body);
      expect(await target.download("day=1/part-0.csv", join(local, "down.csv"))).toBe(true);
      expect(await readFile(join(local, "down.csv"))).toEqual(body);
    });

    it("says a name that is not there is not there, however it is read", async () => {
      expect(await target.read("missing.csv")).toBeUndefined();
      expect(await target.openRead("missing.csv")).toBeUndefined();
      expect(await target.download("missing.csv", join(local, "none.csv"))).toBe(false);
      expect(await target.md5("missing.csv")).toBeUndefined();
    });

    it("creates a name only once with putIfAbsent, and replaces it with putOverwrite", async () => {
      expect(await target.putIfAbsent("_delta_log/0.json", Buffer.from("first"))).toBe(true);
      expect(await target.putIfAbsent("_delta_log/0.json", Buffer.from("second"))).toBe(false);
      expect((await target.read("_delta_log/0.json"))?.toString()).toBe("first");
      await target.putOverwrite("_delta_log/0.json", Buffer.from("third"));
      expect((await target.read("_delta_log/0.json"))?.toString()).toBe("third");
    });

    it("lists names relative to the target, by prefix, and forgets what was deleted", async () => {
      for (const n of ["a/1.csv", "a/2.csv", "b/1.csv"]) await target.putOverwrite(n, Buffer.from(n));
      expect(await target.list()).toEqual(["a/1.csv", "a/2.csv", "b/1.csv"]);
      expect(await target.list("a/")).toEqual(["a/1.csv", "a/2.csv"]);
      await target.delete("a/1.csv");
      // Deleting what is not there is fine: a retried clean-up does it.
      await target.delete("a/1.csv");
      expect(await target.list("a/")).toEqual(["a/2.csv"]);
    });

    it("reports the MD5 of what it holds as Blob Storage does (base64)", async () => {
      await target.putOverwrite("m.txt", Buffer.from("hello"));
      expect(await target.md5("m.txt")).toBe("XUFAKrxLKna5cZ2REBfFkg==");
    });

    it(`${reportsMd5OnPut ? "answers an upload with" : "leaves out of an upload's answer"} the MD5 it then holds, small files and larger ones alike`, async () => {
      // One from memory, one over 4 MiB through the SDK's file upload (still one request).
      for (const [file, body] of [["small.txt", Buffer.from("hello")], ["larger.bin", Buffer.alloc(5 * 1024 * 1024, 7)]] as const) {
        await writeFile(join(local, file), body);
        const put = await target.put(`md5/${file}`, join(local, file));
        expect(put.md5).toBe(reportsMd5OnPut ? await target.md5(`md5/${file}`) : undefined);
        if (reportsMd5OnPut) expect(put.md5).toBe(createHash("md5").update(body).digest("base64"));
      }
    });
  });
}
