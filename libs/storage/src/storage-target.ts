import { copyFile, link, lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from "@azure/storage-blob";
import type { StorageLocation } from "./connection-string.js";
import { confineFileTarget, type FileTargetPolicy } from "./file-target-policy.js";

/** Somewhere artifacts are written: a blob container folder or a local folder. */
export interface StorageTarget {
  /**
   * Uploads a local file as `name` (relative to the target); returns the artifact's full path,
   * and its MD5 (base64) when the storage reported it in taking the file, as `md5` would.
   */
  put(name: string, localFile: string, signal?: AbortSignal): Promise<PutFile>;
  delete(name: string): Promise<void>;
  /** Names of the files under the target (relative), optionally only those under `prefix`. */
  list(prefix?: string): Promise<string[]>;
  /** Creates `name` with `body` only if nothing is there yet; false when something was. */
  putIfAbsent(name: string, body: Uint8Array): Promise<boolean>;
  /** Writes `name` whole, replacing what is there. */
  putOverwrite(name: string, body: Uint8Array): Promise<void>;
  /** The bytes of `name`, or undefined when it does not exist. */
  read(name: string): Promise<Buffer | undefined>;
  /** Copies `name` into `localFile` (whose folder exists); false when `name` does not exist. */
  download(name: string, localFile: string): Promise<boolean>;
  /** `name`'s content as it is read; undefined when `name` does not exist. */
  openRead(name: string): Promise<NodeJS.ReadableStream | undefined>;
  /** The full path an artifact named `name` has. */
  pathOf(name: string): string;
  /** The MD5 of `name`'s content, base64, as Blob Storage reports Content-MD5; undefined when unknown or missing. */
  md5(name: string): Promise<string | undefined>;
  /** Creates the container or folder if it is missing. */
  ensureExists(): Promise<void>;
}

/** What an upload gives back. */
export interface PutFile {
  path: string;
  md5?: string;
}

/** The largest upload sent in one request (the SDK's default), whose MD5 the service computes. */
const SINGLE_PUT_BYTES = 256 * 1024 * 1024;
/** Files up to this size are uploaded from memory, in one request. */
const SMALL_PUT_BYTES = 4 * 1024 * 1024;

/** Content-MD5 bytes as base64, as the storage reports them; undefined when there are none. */
function base64Of(md5: Uint8Array | undefined): string | undefined {
  return md5 && md5.byteLength ? Buffer.from(md5).toString("base64") : undefined;
}

/** The MD5 of a local file's content. */
async function fileMd5(file: string): Promise<Buffer> {
  const hash = createHash("md5");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest();
}

/**
 * The full path of file `name` (partition folders included) at `location`, as a target there
 * reports it: a URL without its secrets, or a file:// URL.
 */
export function locationPathOf(location: StorageLocation, name: string): string {
  if (location.kind === "folder") return `file://${join(location.path, name)}`;
  return `${location.serviceUrl}/${location.container}/${location.prefix ? `${location.prefix}/` : ""}${name}`;
}

/** A target taken as it is: for reading what is there; writers open theirs confined. */
export function openStorageTarget(location: StorageLocation): StorageTarget {
  return location.kind === "folder" ? new FolderTarget(location.path, async (path) => path) : blobTarget(location);
}

/**
 * Blob clients are kept, a few dozen at most: each has its own HTTP agent, so a client per
 * call opened a new connection for every upload of every run.
 */
const blobTargets = new Map<string, BlobTarget>();
const MAX_BLOB_TARGETS = 64;

function blobTarget(location: Extract<StorageLocation, { kind: "blob" }>): BlobTarget {
  // The key holds the credential: two strings for one container with different keys are two clients.
  const key = JSON.stringify(location);
  let target = blobTargets.get(key);
  if (target) {
    blobTargets.delete(key);
  } else {
    target = new BlobTarget(location);
    if (blobTargets.size >= MAX_BLOB_TARGETS) blobTargets.delete(blobTargets.keys().next().value!);
  }
  blobTargets.set(key, target);
  return target;
}

/**
 * A target Spillway may write: a folder is refused unless the policy allows it (SPEC §7),
 * and every path it touches later is checked again, as a symlink may be swapped in after
 * the table was created or between two runs.
 */
export async function openConfinedStorageTarget(location: StorageLocation, policy: FileTargetPolicy): Promise<StorageTarget> {
  if (location.kind !== "folder") return blobTarget(location);
  await confineFileTarget(location.path, policy);
  return new FolderTarget(location.path, (path) => confineFileTarget(path, policy));
}

class FolderTarget implements StorageTarget {
  /** `resolve` turns a path under the folder into the real one to touch, or refuses it. */
  constructor(
    private readonly root: string,
    private readonly resolve: (path: string) => Promise<string>,
  ) {}

  /**
   * Where file `name` goes: its folder resolved, its last segment as is. rename, link and
   * rm replace or remove a symlink in that last place rather than follow it.
   */
  private async fileAt(name: string): Promise<string> {
    if (name.split("/").includes("..")) throw invalidArgument(`artifact name '${name}' contains '..'`);
    const path = join(this.root, name);
    return join(await this.resolve(dirname(path)), basename(path));
  }

  pathOf(name: string): string {
    return locationPathOf({ kind: "folder", path: this.root }, name);
  }

  async ensureExists(): Promise<void> {
    await mkdir(await this.resolve(this.root), { recursive: true });
  }

  async put(name: string, localFile: string, signal?: AbortSignal): Promise<PutFile> {
    const target = await this.fileAt(name);
    await mkdir(dirname(target), { recursive: true });
    // Copy under a hidden name, then rename: readers never see a partial file.
    const partial = partialName(target);
    await copyFile(localFile, partial);
    if (signal?.aborted) {
      await rm(partial, { force: true });
      throw new SpillwayError(ErrorCode.cancelled, "upload cancelled: the caller went away");
    }
    await rename(partial, target);
    // A folder reports no MD5 of its own: `md5` reads the file when it is asked.
    return { path: this.pathOf(name) };
  }

  async delete(name: string): Promise<void> {
    await rm(await this.fileAt(name), { force: true });
  }

  async putIfAbsent(name: string, body: Uint8Array): Promise<boolean> {
    const target = await this.fileAt(name);
    await mkdir(dirname(target), { recursive: true });
    // Write aside, then link: link fails if the name exists, and readers never see a partial file.
    const partial = partialName(target);
    await writeFile(partial, body);
    try {
      await link(partial, target);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    } finally {
      await rm(partial, { force: true });
    }
  }

  async putOverwrite(name: string, body: Uint8Array): Promise<void> {
    const target = await this.fileAt(name);
    await mkdir(dirname(target), { recursive: true });
    const partial = partialName(target);
    await writeFile(partial, body);
    await rename(partial, target);
  }

  async read(name: string): Promise<Buffer | undefined> {
    try {
      // Resolved whole: reading follows a symlink in the last place too.
      return await readFile(await this.resolve(await this.fileAt(name)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async md5(name: string): Promise<string | undefined> {
    try {
      // Resolved as every other access is (confined to the allowed roots), and a regular file only.
      const file = await this.resolve(await this.fileAt(name));
      if (!(await lstat(file)).isFile()) return undefined;
      return (await fileMd5(file)).toString("base64");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async openRead(name: string): Promise<NodeJS.ReadableStream | undefined> {
    try {
      return (await open(await this.resolve(await this.fileAt(name)), "r")).createReadStream();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async download(name: string, localFile: string): Promise<boolean> {
    try {
      await copyFile(await this.resolve(await this.fileAt(name)), localFile);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  async list(prefix = ""): Promise<string[]> {
    return (await this.listAll()).filter((n) => n.startsWith(prefix));
  }

  private async listAll(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, rel: string) => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(join(dir, e.name), r);
        else if (!e.name.endsWith(".partial")) out.push(r);
      }
    };
    await walk(await this.resolve(this.root), "");
    return out.sort();
  }
}

class BlobTarget implements StorageTarget {
  private readonly container: ContainerClient;
  private readonly prefix: string;
  private readonly location: Extract<StorageLocation, { kind: "blob" }>;

  constructor(location: Extract<StorageLocation, { kind: "blob" }>) {
    const { auth } = location;
    const service =
      auth.kind === "key"
        ? new BlobServiceClient(location.serviceUrl, new StorageSharedKeyCredential(location.accountName, auth.key))
        : new BlobServiceClient(`${location.serviceUrl}?${auth.kind === "sas" ? auth.token : ""}`);
    this.container = service.getContainerClient(location.container);
    this.prefix = location.prefix ? `${location.prefix}/` : "";
    this.location = location;
  }

  pathOf(name: string): string {
    return locationPathOf(this.location, name);
  }

  async md5(name: string): Promise<string | undefined> {
    try {
      const md5 = (await this.container.getBlockBlobClient(this.prefix + name).getProperties()).contentMD5;
      return md5 ? Buffer.from(md5).toString("base64") : undefined;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async ensureExists(): Promise<void> {
    await this.container.createIfNotExists();
  }

  async put(name: string, localFile: string, signal?: AbortSignal): Promise<PutFile> {
    const { size } = await stat(localFile);
    if (size <= SMALL_PUT_BYTES) {
      // One request from memory: the SDK's file path (a stream, opened and measured again)
      // cost a small run's upload a third more than the request itself (bench #3).
      const put = await this.container.getBlockBlobClient(this.prefix + name).upload(await readFile(localFile), size, { abortSignal: signal });
      return { path: this.pathOf(name), md5: base64Of(put.contentMD5) };
    }
    // A block blob commits all at once: a failed upload leaves nothing visible. The signal
    // stops an upload whose run is over (the caller died): it must not land later. Its MD5 is
    // kept as Content-MD5 (a block upload has none of its own), for manifests to report.
    // Blob Storage keeps Content-MD5 of a blob put in one request (up to 256 MiB) itself; one
    // sent in blocks has none unless given.
    const inBlocks = size > SINGLE_PUT_BYTES;
    const blockMd5 = inBlocks ? await fileMd5(localFile) : undefined;
    const put = await this.container.getBlockBlobClient(this.prefix + name).uploadFile(localFile, {
      blockSize: size > 64 * 1024 * 1024 ? 8 * 1024 * 1024 : 4 * 1024 * 1024,
      concurrency: 4,
      abortSignal: signal,
      blobHTTPHeaders: blockMd5 ? { blobContentMD5: blockMd5 } : undefined,
      maxSingleShotSize: SINGLE_PUT_BYTES,
    });
    // One request answers with the MD5 the service computed; a block list's answer has the
    // list's MD5, not the blob's: the one sent with the blocks is what the blob keeps.
    return { path: this.pathOf(name), md5: base64Of(inBlocks ? blockMd5 : put.contentMD5) };
  }

  async delete(name: string): Promise<void> {
    try {
      await this.container.getBlockBlobClient(this.prefix + name).deleteIfExists();
    } catch (err) {
      // The container is gone, and the blob with it.
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  async list(prefix = ""): Promise<string[]> {
    const out: string[] = [];
    for await (const blob of this.container.listBlobsFlat({ prefix: this.prefix + prefix })) out.push(blob.name.slice(this.prefix.length));
    return out.sort();
  }

  async putIfAbsent(name: string, body: Uint8Array): Promise<boolean> {
    try {
      // If-None-Match: * makes the create atomic: of two writers, one wins.
      await this.container.getBlockBlobClient(this.prefix + name).upload(body, body.byteLength, { conditions: { ifNoneMatch: "*" } });
      return true;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 409 || status === 412) return false;
      throw err;
    }
  }

  async putOverwrite(name: string, body: Uint8Array): Promise<void> {
    await this.container.getBlockBlobClient(this.prefix + name).upload(body, body.byteLength);
  }

  async read(name: string): Promise<Buffer | undefined> {
    try {
      return await this.container.getBlockBlobClient(this.prefix + name).downloadToBuffer();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async openRead(name: string): Promise<NodeJS.ReadableStream | undefined> {
    try {
      return (await this.container.getBlockBlobClient(this.prefix + name).download()).readableStreamBody;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async download(name: string, localFile: string): Promise<boolean> {
    try {
      await this.container.getBlockBlobClient(this.prefix + name).downloadToFile(localFile);
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) {
        await rm(localFile, { force: true });
        return false;
      }
      throw err;
    }
  }
}

/** A hidden, unique name beside `target` to write to before the file becomes visible. */
function partialName(target: string): string {
  return join(dirname(target), `.${randomUUID()}.partial`);
}
