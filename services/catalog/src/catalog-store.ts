import { openMetadataDb, type MetadataDb, type MetadataSession } from "@spillway/metadata";

/** `principals`: the roles granted in a database (name "") or on one of its tables (name = table). */
export type DefinitionKind = "table" | "external_table" | "continuous_export" | "principals" | "export_leftovers";

/** One audited management call (SPEC §7), as the audit log keeps it. */
export interface StoredCommand {
  startedOn: Date;
  durationMs: number;
  principal: string;
  commandType: string;
  database: string;
  object: string;
  state: string;
  failureReason: string;
  text: string;
  /** The call's id: an outcome replaces the InProgress record of the same call (CallGuard). */
  commandId?: string;
}

/** Audit records older than this are dropped, as Kusto keeps .show commands for 30 days. */
const COMMAND_RETENTION_MS = 30 * 24 * 3600_000;
const COMMAND_PRUNE_EVERY_MS = 3600_000;
/** The oldest audit record still kept. */
const retentionStart = () => new Date(Date.now() - COMMAND_RETENTION_MS);

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS definitions (
     kind VARCHAR NOT NULL, database VARCHAR NOT NULL, name VARCHAR NOT NULL, body VARCHAR NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS commands (
     started_on TIMESTAMP NOT NULL, duration_ms BIGINT NOT NULL, principal VARCHAR NOT NULL,
     command_type VARCHAR NOT NULL, database VARCHAR NOT NULL, object VARCHAR NOT NULL,
     state VARCHAR NOT NULL, failure_reason VARCHAR NOT NULL, text VARCHAR NOT NULL)`,
  // Goes up with every committed change of the definitions: a node's copy of them is current while it matches.
  `CREATE TABLE IF NOT EXISTS definitions_version (version BIGINT NOT NULL)`,
  // Records written before calls answer had no id (NULL): each was the call's only record.
  `ALTER TABLE commands ADD COLUMN IF NOT EXISTS command_id VARCHAR`,
  // An outcome finds its call's record by it: no scan of 30 days of records (nor, on
  // PostgreSQL, a read of the whole table that concurrent outcomes would conflict on).
  `CREATE INDEX IF NOT EXISTS commands_by_call ON commands (command_id)`,
];

/**
 * Definitions of tables, external tables and continuous exports, one JSON document
 * each, in one DuckDB file or a PostgreSQL database shared by nodes (libs/metadata).
 * Writes that must check for clashes run in one transaction (see `write`).
 *
 * Reads are served from memory, so the scheduler can list hundreds of exports every
 * second without a query each. On DuckDB this process holds the file's only handle, so a
 * copy loaded at open and updated after each commit stays exact; on a shared database a
 * read first compares the copy's version with the database's, one small query, and
 * reloads the copy when another node changed a definition.
 */
export class CatalogStore {
  private constructor(
    private readonly db: MetadataDb,
    private committed: Map<string, Definition>,
    private loadedVersion: bigint,
  ) {}

  private changeCount = 0;
  /** When the audit log was last rid of what is past retention (0: not yet by this process). */
  private prunedCommandsAt = 0;

  /** The store on PostgreSQL at `metadataUrl` when given, else in `<dataDir>/catalog.duckdb`. */
  static async open(dataDir: string, metadataUrl?: string): Promise<CatalogStore> {
    const db = await openMetadataDb(metadataUrl, dataDir, "catalog.duckdb");
    try {
      await db.migrate(SCHEMA);
      const { definitions, version } = await db.transaction(async (q) => {
        if (!(await q.one("SELECT version FROM definitions_version"))) await q.run("INSERT INTO definitions_version VALUES (0)");
        return loadDefinitions(q);
      });
      return new CatalogStore(db, definitions, version);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** Brings the in-memory copy up to date with what other nodes committed (a shared database only). */
  async sync(): Promise<void> {
    if (!this.db.shared) return;
    const latest = await this.db.exclusive(async (q) => {
      const row = await q.one("SELECT version FROM definitions_version");
      return row?.version === this.loadedVersion ? undefined : loadDefinitions(q);
    });
    if (!latest) return;
    this.committed = latest.definitions;
    this.loadedVersion = latest.version;
    this.changeCount++;
  }

  async get(kind: DefinitionKind, database: string, name: string): Promise<string | undefined> {
    await this.sync();
    return this.committed.get(keyOf(kind, database, name))?.body;
  }

  /** Bodies of `kind` (in `database`, or all), ordered by database and name. */
  async list(kind: DefinitionKind, database?: string): Promise<string[]> {
    await this.sync();
    return [...this.committed.values()]
      .filter((d) => d.kind === kind && (database === undefined || d.database === database))
      .sort((a, b) => compare(a.database, b.database) || compare(a.name, b.name))
      .map((d) => d.body);
  }

  /** Names and bodies of `kind` in `database`. */
  async listNamed(kind: DefinitionKind, database: string): Promise<Array<{ name: string; body: string }>> {
    await this.sync();
    return [...this.committed.values()].filter((d) => d.kind === kind && d.database === database).map((d) => ({ name: d.name, body: d.body }));
  }

  /** Runs `task` in a transaction with read and write access to the definitions. */
  async write<T>(task: (tx: CatalogTransaction) => Promise<T>): Promise<T> {
    const tx = await this.db.transaction(async (q) => {
      const tx = new CatalogTransaction(q);
      const result = await task(tx);
      const version = tx.changes.length ? ((await q.one("UPDATE definitions_version SET version = version + 1 RETURNING version"))!.version as bigint) : undefined;
      return { tx, result, version };
    });
    if (tx.version === undefined) return tx.result;
    // Only what committed reaches the in-memory copy; when another node committed in between, the copy is reloaded at the next read.
    for (const [key, definition] of tx.tx.changes) {
      if (definition) this.committed.set(key, definition);
      else this.committed.delete(key);
    }
    this.loadedVersion = tx.version === this.loadedVersion + 1n ? tx.version : -1n;
    this.changeCount++;
    return tx.result;
  }

  /**
   * Appends to the audit log, or replaces a call's InProgress record with its outcome. What
   * is past retention is deleted at most once an hour, not with every record (records are
   * written beside public calls, bench #3), and listCommands leaves it out meanwhile.
   */
  async recordCommand(c: StoredCommand): Promise<void> {
    const prune = Date.now() - this.prunedCommandsAt >= COMMAND_PRUNE_EVERY_MS;
    if (prune) this.prunedCommandsAt = Date.now();
    await this.db.exclusive(async (q) => {
      // An outcome replaces its call's InProgress record; one that finds none (its first record
      // was not written, or not yet) is added, and a first record that comes after its outcome
      // adds nothing: one row per call whatever the order.
      const duration = BigInt(Math.round(c.durationMs));
      const replaced =
        c.commandId && c.state !== "InProgress"
          ? await q.change("UPDATE commands SET duration_ms = $2, state = $3, failure_reason = $4 WHERE command_id = $1", [c.commandId, duration, c.state, c.failureReason])
          : 0;
      if (!replaced) {
        // A record without an id (from a caller before command ids) matches none: always added.
        await q.run(
          `INSERT INTO commands (started_on, duration_ms, principal, command_type, database, object, state, failure_reason, text, command_id)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::VARCHAR WHERE NOT EXISTS (SELECT 1 FROM commands WHERE command_id = $10::VARCHAR)`,
          [c.startedOn, duration, c.principal, c.commandType, c.database, c.object, c.state, c.failureReason, c.text, c.commandId || null],
        );
      }
      if (prune) await q.run("DELETE FROM commands WHERE started_on < $1", [retentionStart()]);
    });
  }

  /** The audit log of a database, oldest first. */
  async listCommands(database: string): Promise<StoredCommand[]> {
    const rows = await this.db.exclusive((q) =>
      q.all(
        `SELECT started_on, duration_ms, principal, command_type, database, object, state, failure_reason, text, command_id
           FROM commands WHERE database = $1 AND started_on >= $2 ORDER BY started_on`,
        [database, retentionStart()],
      ),
    );
    return rows.map((r) => ({
      startedOn: r.started_on as Date,
      durationMs: Number(r.duration_ms),
      principal: String(r.principal),
      commandType: String(r.command_type),
      database: String(r.database),
      object: String(r.object),
      state: String(r.state),
      failureReason: String(r.failure_reason),
      text: String(r.text),
      commandId: r.command_id === null ? undefined : String(r.command_id),
    }));
  }

  /** Goes up with every change of the in-memory copy: what was derived from the definitions at one value still holds (after `sync`). */
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

  constructor(private readonly q: MetadataSession) {}

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

async function getBody(q: MetadataSession, kind: DefinitionKind, database: string, name: string): Promise<string | undefined> {
  const row = await q.one("SELECT body FROM definitions WHERE kind = $1 AND database = $2 AND name = $3", [kind, database, name]);
  return row ? String(row.body) : undefined;
}

async function listBodies(q: MetadataSession, kind: DefinitionKind, database?: string): Promise<string[]> {
  const rows = database
    ? await q.all("SELECT body FROM definitions WHERE kind = $1 AND database = $2 ORDER BY name", [kind, database])
    : await q.all("SELECT body FROM definitions WHERE kind = $1 ORDER BY database, name", [kind]);
  return rows.map((r) => String(r.body));
}

async function loadDefinitions(q: MetadataSession): Promise<{ definitions: Map<string, Definition>; version: bigint }> {
  const version = (await q.one("SELECT version FROM definitions_version"))!.version as bigint;
  const definitions = new Map<string, Definition>();
  for (const r of await q.all("SELECT kind, database, name, body FROM definitions")) {
    const d = { kind: String(r.kind) as DefinitionKind, database: String(r.database), name: String(r.name), body: String(r.body) };
    definitions.set(keyOf(d.kind, d.database, d.name), d);
  }
  return { definitions, version };
}
