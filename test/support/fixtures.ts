import { randomUUID } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { useAzurite, type Azurite } from "./azurite.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "./spillway-processes.js";

/** A new, empty container with a unique name (tests may share one Azurite). */
export async function newContainer(azurite: Azurite, prefix = "c"): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  await azurite.client.getContainerClient(name).create();
  return name;
}

/** The error a call that must fail fails with; a call that succeeds fails the test. */
export async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  return (await call.then(
    () => {
      throw new Error("the call succeeded but should have been refused");
    },
    (e: unknown) => e,
  )) as { code: number; message: string };
}

export function csv(rows: Array<Array<string | number>>): Buffer {
  return Buffer.from(rows.map((r) => r.join(",")).join("\n") + "\n");
}

/** Every committed artifact path of an export. */
export async function artifactPaths(sw: SpillwayUnderTest, name: string): Promise<string[]> {
  const { artifacts } = await sw.catalog.showExportedArtifacts({ name });
  return artifacts.map((a) => a.path);
}

/** The data files in a container: its blobs but Spillway's own manifests (_spillway/). */
export async function blobNames(azurite: Azurite, container: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of azurite.client.getContainerClient(container).listBlobsFlat()) if (!/(^|\/)_spillway\//.test(b.name)) out.push(b.name);
  return out.sort();
}

/** The run manifests Spillway wrote into a container (under any folder), by name from `_spillway/` on, parsed. */
export async function manifests(azurite: Azurite, container: string): Promise<Map<string, { kind: string; runId: string; runNumber?: number; fromCursor: string; toCursor: string; files: Array<{ path: string; numRecords: number; sizeInBytes: number; md5: string | null }> }>> {
  const out = new Map();
  const client = azurite.client.getContainerClient(container);
  for await (const b of client.listBlobsFlat()) {
    const at = b.name.indexOf("_spillway/manifests/");
    if (at === 0 || (at > 0 && b.name[at - 1] === "/")) out.set(b.name.slice(at), JSON.parse((await client.getBlockBlobClient(b.name).downloadToBuffer()).toString()));
  }
  return out;
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

/**
 * Registers, for the enclosing describe, an Azurite and Spillway processes in `mode`,
 * started before its tests and stopped after them.
 */
export function withSpillwayAndAzurite(mode: Mode, env: Record<string, string> = {}): { azurite: Azurite; sw: SpillwayUnderTest } {
  const ctx = {} as { azurite: Azurite; sw: SpillwayUnderTest };
  beforeAll(async () => {
    ctx.azurite = await useAzurite();
    ctx.sw = await startSpillwayProcesses(mode, env);
  });
  afterAll(async () => {
    await ctx.sw?.stop();
    await ctx.azurite?.stop();
  });
  return ctx;
}
