import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
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
  let serviceUrl = process.env.AZURITE_BLOB_URL;
  let child: ChildProcess | undefined;
  let location: string | undefined;
  if (!serviceUrl) {
    const port = await freePort();
    location = mkdtempSync(join(tmpdir(), "azurite-"));
    child = spawn(
      join(process.cwd(), "node_modules/.bin/azurite-blob"),
      ["--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
      { stdio: "ignore" },
    );
    serviceUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  }
  const client = new BlobServiceClient(serviceUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  await waitFor("azurite", async () => {
    await client.getProperties();
    return true;
  });
  return {
    serviceUrl,
    client,
    connectionString: (path) => `${serviceUrl}/${path};${AZURITE_KEY}`,
    async stop() {
      if (child) {
        child.kill("SIGTERM");
        await new Promise((r) => child!.once("exit", r));
      }
      if (location) rmSync(location, { recursive: true, force: true });
    },
  };
}
