import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { stopChild } from "./child-process.js";
import { freePort, waitFor } from "./free-port.js";

/** Azurite's well-known development account (public, documented). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface Azurite {
  /** e.g. http://127.0.0.1:10000/devstoreaccount1 */
  serviceUrl: string;
  client: BlobServiceClient;
  /** A Kusto-style connection string for a container (and folder). */
  connectionString(containerAndFolder: string): string;
  stop(): Promise<void>;
}

/**
 * Uses the Azurite that .ci/run started (AZURITE_BLOB_URL) or starts one from
 * node_modules for this test file, on a free port, in a temporary folder.
 */
export async function useAzurite(): Promise<Azurite> {
  const serviceUrl = process.env.AZURITE_BLOB_URL;
  if (!serviceUrl) {
    const location = mkdtempSync(join(tmpdir(), "azurite-"));
    const started = await startAzurite(location);
    return {
      ...started,
      async stop() {
        await started.stop();
        rmSync(location, { recursive: true, force: true });
      },
    };
  }
  const client = new BlobServiceClient(serviceUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  await waitFor("azurite", async () => {
    await client.getProperties();
    return true;
  });
  return { serviceUrl, client, connectionString: (path) => `${serviceUrl}/${path};${AZURITE_KEY}`, stop: async () => undefined };
}

/** Azurite's blob service from node_modules, on a free port of 127.0.0.1, storing under `location`. */
export async function startAzurite(location: string): Promise<Azurite & { pid: number }> {
  mkdirSync(location, { recursive: true });
  const port = await freePort();
  const child = spawn(
    fileURLToPath(new URL("../../node_modules/.bin/azurite-blob", import.meta.url)),
    ["--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
    { stdio: "ignore", cwd: location },
  );
  const serviceUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const client = new BlobServiceClient(serviceUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  const stop = () => stopChild(child);
  try {
    await waitFor("azurite", async () => {
      if (child.exitCode !== null) throw new Error(`azurite exited with ${child.exitCode}`);
      await client.getProperties();
      return true;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid!, serviceUrl, client, connectionString: (path) => `${serviceUrl}/${path};${AZURITE_KEY}`, stop };
}
