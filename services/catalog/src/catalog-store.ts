import { join } from "node:path";
import { SerialConnection, type Queryable } from "@spillway/duck";

export type DefinitionKind = "table" | "external_table" | "continuous_export";

/**
 * Definitions of tables, external tables and continuous exports, one JSON document
 * each, in one DuckDB file. Writes that must check for clashes run in one
 * transaction (see `write`).
 */
export class CatalogStore {
  private constructor(private readonly db: SerialConnection) {}

  static async open(dataDir: string): Promise<CatalogStore> {
    const db = await SerialConnection.open(join(dataDir, "catalog.duckdb"));
    await db.exclusive((q) =>
      q.run(`CREATE TABLE IF NOT EXISTS definitions (
               kind VARCHAR NOT NULL, database VARCHAR NOT NULL, name VARCHAR NOT NULL, body VARCHAR NOT NULL)`),
    );
    return new CatalogStore(db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  get(kind: DefinitionKind, database: string, name: string): Promise<string | undefined> {
    return this.db.exclusive((q) => getBody(q, kind, database, name));
  }

  list(kind: DefinitionKind, database?: string): Promise<string[]> {
    return this.db.exclusive((q) => listBodies(q, kind, database));
  }

  /** Runs `task` in a transaction with read and write access to the definitions. */
  write<T>(task: (tx: CatalogTransaction) => Promise<T>): Promise<T> {
    return this.db.transaction((q) => task(new CatalogTransaction(q)));
  }
}

export class CatalogTransaction {
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
  }

  async delete(kind: DefinitionKind, database: string, name: string): Promise<boolean> {
    const existed = (await this.get(kind, database, name)) !== undefined;
    await this.q.run("DELETE FROM definitions WHERE kind = $1 AND database = $2 AND name = $3", [kind, database, name]);
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
