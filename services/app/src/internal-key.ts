import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { clusterKey, PostgresMetadataDb } from "@spillway/metadata";

/**
 * The key Spillway processes sharing a data directory present to each other, so
 * internal RPCs (which carry storage secrets or write files) refuse outside callers.
 * Created once, exclusively, so processes starting together agree on it; with a shared
 * PostgreSQL, the cluster's key kept there.
 */
export async function loadInternalKey(dataDir: string, metadataUrl?: string): Promise<string> {
  const file = join(dataDir, "internal.key");
  if (metadataUrl) {
    // Nodes sharing a PostgreSQL database are one cluster: they share its key. It is kept in
    // the data dir too, where local tools (and tests) find a process's key.
    const db = await PostgresMetadataDb.open(metadataUrl);
    try {
      const key = await clusterKey(db, () => randomBytes(32).toString("hex"));
      await writeFile(file, key, { mode: 0o600 });
      return key;
    } finally {
      await db.close();
    }
  }
  try {
    await writeFile(file, randomBytes(32).toString("hex"), { flag: "wx", mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  // Another process may have created it an instant ago and not finished writing.
  for (let i = 0; i < 50; i++) {
    const key = (await readFile(file, "utf8")).trim();
    if (key.length === 64) return key;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} is not a valid internal key; delete it to have a new one made`);
}
