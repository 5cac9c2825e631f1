import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * The key Spillway processes sharing a data directory present to each other, so
 * internal RPCs (which carry storage secrets or write files) refuse outside callers.
 * Created once, exclusively, so processes starting together agree on it.
 */
export async function loadInternalKey(dataDir: string): Promise<string> {
  const file = join(dataDir, "internal.key");
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
