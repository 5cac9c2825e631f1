import { copyFile, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from "@azure/storage-blob";
import type { StorageLocation } from "./connection-string.js";

/** Somewhere artifacts are written: a blob container folder or a local folder. */
export interface StorageTarget {
  /** Uploads a local file as `name` (relative to the target); returns the artifact's full path. */
  put(name: string, localFile: string): Promise<string>;
  delete(name: string): Promise<void>;
  /** Names of the files under the target (relative), for checks and clean-up. */
  list(): Promise<string[]>;
  /** The full path an artifact named `name` has. */
  pathOf(name: string): string;
  /** Creates the container or folder if it is missing. */
  ensureExists(): Promise<void>;
}

export function openStorageTarget(location: StorageLocation): StorageTarget {
  return location.kind === "folder" ? new FolderTarget(location.path) : new BlobTarget(location);
}

class FolderTarget implements StorageTarget {
  constructor(private readonly root: string) {}

  pathOf(name: string): string {
    return `file://${join(this.root, name)}`;
  }

  async ensureExists(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async put(name: string, localFile: string): Promise<string> {
    const target = join(this.root, name);
    await mkdir(dirname(target), { recursive: true });
    // Copy under a hidden name, then rename: readers never see a partial file.
    const partial = join(dirname(target), `.${process.pid}.${Date.now()}.partial`);
    await copyFile(localFile, partial);
    await rename(partial, target);
    return this.pathOf(name);
  }

  async delete(name: string): Promise<void> {
    await rm(join(this.root, name), { force: true });
  }

  async list(): Promise<string[]> {
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
        else out.push(r);
      }
    };
    await walk(this.root, "");
    return out.sort();
  }
}

class BlobTarget implements StorageTarget {
  private readonly container: ContainerClient;
  private readonly prefix: string;
  private readonly containerUrl: string;

  constructor(location: Extract<StorageLocation, { kind: "blob" }>) {
    const { auth } = location;
    const service =
      auth.kind === "key"
        ? new BlobServiceClient(location.serviceUrl, new StorageSharedKeyCredential(location.accountName, auth.key))
        : new BlobServiceClient(`${location.serviceUrl}?${auth.kind === "sas" ? auth.token : ""}`);
    this.container = service.getContainerClient(location.container);
    this.prefix = location.prefix ? `${location.prefix}/` : "";
    this.containerUrl = `${location.serviceUrl}/${location.container}`;
  }

  pathOf(name: string): string {
    return `${this.containerUrl}/${this.prefix}${name}`;
  }

  async ensureExists(): Promise<void> {
    await this.container.createIfNotExists();
  }

  async put(name: string, localFile: string): Promise<string> {
    const { size } = await stat(localFile);
    // A block blob commits all at once: a failed upload leaves nothing visible.
    await this.container.getBlockBlobClient(this.prefix + name).uploadFile(localFile, {
      blockSize: size > 64 * 1024 * 1024 ? 8 * 1024 * 1024 : 4 * 1024 * 1024,
      concurrency: 4,
    });
    return this.pathOf(name);
  }

  async delete(name: string): Promise<void> {
    await this.container.getBlockBlobClient(this.prefix + name).deleteIfExists();
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    for await (const blob of this.container.listBlobsFlat({ prefix: this.prefix })) out.push(blob.name.slice(this.prefix.length));
    return out.sort();
  }
}
