import type { MetadataDb } from "./metadata-db.js";

/**
 * The key nodes sharing this database present to each other, so internal RPCs (which carry
 * storage secrets or write files) refuse outside callers: made by the first node, read by
 * the others. Whoever can read the database can read it, as they can the secrets it holds.
 */
export async function clusterKey(db: MetadataDb, fresh: () => string): Promise<string> {
  await db.migrate(["CREATE TABLE IF NOT EXISTS cluster_key (key VARCHAR NOT NULL)"]);
  return db.transaction(async (q) => {
    const row = await q.one("SELECT key FROM cluster_key");
    if (row) return String(row.key);
    const key = fresh();
    await q.run("INSERT INTO cluster_key VALUES ($1)", [key]);
    return key;
  });
}
