import { join } from "node:path";
import { SerialConnection, type Queryable } from "@spillway/duck";

export type DefinitionKind = "table" | "external_table" | "continuous_export";

/**
 * Definitions of tables, external tables and continuous exports, one JSON document
 * each, in one DuckDB file. Writes that must check for clashes run in one
 * transaction (see `write`).
 *
 * Reads are served from memory: this process holds the file's only handle (DuckDB
 * locks it), so a copy loaded at open and updated after each commit stays exact, and
 * the scheduler can list hundreds of exports every second without a query each.
 */
export class CatalogStore {
  private constructor(
    private readonly db: SerialConnection,
    private readonly committed: Map<string, Definition>,
  ) {}

  private changeCount = 0;

  static async open(dataDir: string): Promise<CatalogStore> {
    const db = await SerialConnection.open(join(dataDir, "catalog.duckdb"));
    await db.exclusive((q) =>
      q.run(`CREATE TABLE IF NOT EXISTS definitions (
               kind VARCHAR NOT NULL, database VARCHAR NOT NULL, name VARCHAR NOT NULL, body VARCHAR NOT NULL)`),
    );
    const rows = await db.exclusive((q) => q.all("SELECT kind, database, name, body FROM definitions"));
    const committed = new Map<string, Definition>();
    for (const r of rows) {
      const d = { kind: String(r.kind) as DefinitionKind, database: String(r.database), name: String(r.name), body: String(r.body) };
      committed.set(keyOf(d.kind, d.database, d.name), d);
    }
    return new CatalogStore(db, committed);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async get(kind: DefinitionKind, database: string, name: string): Promise<string | undefined> {
    return this.committed.get(keyOf(kind, database, name))?.body;
  }

  /** Bodies of `kind` (in `database`, or all), ordered by database and name. */
  async list(kind: DefinitionKind, database?: string): Promise<string[]> {
    return [...this.committed.values()]
      .filter((d) => d.kind === kind && (database === undefined || d.database === database))
      .sort((a, b) => compare(a.database, b.database) || compare(a.name, b.name))
      .map((d) => d.body);
  }

  /** Runs `task` in a transaction with read and write access to the definitions. */
  async write<T>(task: (tx: CatalogTransaction) => Promise<T>): Promise<T> {
    const tx = await this.db.transaction(async (q) => {
      const tx = new CatalogTransaction(q);
      return { tx, result: await task(tx) };
    });
    // Only what committed reaches the in-memory copy.
    for (const [key, definition] of tx.tx.changes) {
      if (definition) this.committed.set(key, definition);
      else this.committed.delete(key);
    }
    if (tx.tx.changes.length) this.changeCount++;
    return tx.result;
  }

  /** Goes up with every committed change: what was derived from the definitions at one value still holds. */
  get version(): number {
    return this.changeCount;
  }
}

interface Definition {
  kind: DefinitionKind;
  database: string;
  name: string;
  body: string;
}

const keyOf = (kind: DefinitionKind, database: string, name: string) => `${kind}\u0000${database}\u0000${name}`;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export class CatalogTransaction {
  /** Writes in order, applied to the in-memory copy once the transaction commits. */
  readonly changes: Array<[string, Definition | undefined]> = [];

  constructor(private readonly q: Queryable) {}

  get(kind: DefinitionKind, database: string, name: string): Promise<string | undefined> {
    return getBody(this.q, kind, database, name);
  }

  list(kind: DefinitionKind, database?: string): Promise<string[]> {
    return listBodies(this.q, kind, database);
  }

  async put(kind: DefinitionKind, database: string, name: string, body: string): Promise<void> {
    await this.delete(kind, database, name);
    await this.q.run("INSERT INTO definitions VALUES ($1, $2, $3, $4)", [kind, database, name, body]);
    this.changes.push([keyOf(kind, database, name), { kind, database, name, body }]);
  }

  async delete(kind: DefinitionKind, database: string, name: string): Promise<boolean> {
    const existed = (await this.get(kind, database, name)) !== undefined;
    await this.q.run("DELETE FROM definitions WHERE kind = $1 AND database = $2 AND name = $3", [kind, database, name]);
    this.changes.push([keyOf(kind, database, name), undefined]);
    return existed;
  }
}

async function getBody(q: Queryable, kind: DefinitionKind, database: string, name: string): Promise<string | undefined> {
  const row = await q.one("SELECT body FROM definitions WHERE kind = $1 AND database = $2 AND name = $3", [kind, database, name]);
  return row ? String(row.body) : undefined;
}

async function listBodies(q: Queryable, kind: DefinitionKind, database?: string): Promise<string[]> {
  const rows = database
    ? await q.all("SELECT body FROM definitions WHERE kind = $1 AND database = $2 ORDER BY name", [kind, database])
    : await q.all("SELECT body FROM definitions WHERE kind = $1 ORDER BY database, name", [kind]);
  return rows.map((r) => String(r.body));
}
