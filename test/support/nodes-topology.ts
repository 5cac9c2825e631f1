import { randomUUID } from "node:crypto";
import { useAzurite } from "./azurite.js";
import { postgresDatabaseForTest } from "./postgres.js";

/** What the nodes of the `nodes` topology share, and how a test looks into it. */
export interface SharedByNodes {
  /** SPILLWAY_METADATA_URL and SPILLWAY_EXTENT_STORE for every node. */
  env: Record<string, string>;
  /** The extent files of a table of the default database, in the shared extent store. */
  extentFiles(table: string): Promise<string[]>;
  release(): Promise<void>;
}

/** A new PostgreSQL database and an extent store in a container of its own in Azurite. */
export async function sharedByNodes(): Promise<SharedByNodes> {
  const metadata = await postgresDatabaseForTest();
  const azurite = await useAzurite().catch(async (err) => {
    await metadata.release();
    throw err;
  });
  const container = azurite.client.getContainerClient(`extents-${randomUUID().slice(0, 8)}`);
  return {
    env: { SPILLWAY_METADATA_URL: metadata.url, SPILLWAY_EXTENT_STORE: azurite.connectionString(`${container.containerName}/cluster`) },
    async extentFiles(table) {
      const names: string[] = [];
      for await (const b of container.listBlobsFlat({ prefix: `cluster/extents/default/${table}/` })) names.push(b.name);
      return names;
    },
    async release() {
      await metadata.release();
      await container.deleteIfExists().catch(() => undefined);
      await azurite.stop();
    },
  };
}
