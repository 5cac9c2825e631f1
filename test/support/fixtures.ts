import { randomUUID } from "node:crypto";
import type { Azurite } from "./azurite.js";
import type { SpillwayUnderTest } from "./spillway-processes.js";

/** A new, empty container with a unique name (tests may share one Azurite). */
export async function newContainer(azurite: Azurite, prefix = "c"): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  await azurite.client.getContainerClient(name).create();
  return name;
}

export function csv(rows: Array<Array<string | number>>): Buffer {
  return Buffer.from(rows.map((r) => r.join(",")).join("\n") + "\n");
}

/** Every committed artifact path of an export. */
export async function artifactPaths(sw: SpillwayUnderTest, name: string): Promise<string[]> {
  const { artifacts } = await sw.catalog.showExportedArtifacts({ name });
  return artifacts.map((a) => a.path);
}

export async function blobNames(azurite: Azurite, container: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of azurite.client.getContainerClient(container).listBlobsFlat()) out.push(b.name);
  return out.sort();
}

export const sortBy = <T extends Record<string, unknown>>(rows: T[], ...keys: string[]) =>
  [...rows].sort((a, b) => {
    for (const k of keys) {
      const x = String(a[k]);
      const y = String(b[k]);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  });
