import pg from "pg";
import { SpillwayError, ErrorCode } from "@spillway/errors";
import type { MetadataDb, MetadataSession, SqlRow, SqlValue } from "./metadata-db.js";

/** Serialization failure and deadlock: the transaction lost to another one and may simply run again. */
const RETRYABLE = new Set(["40001", "40P01"]);
const MAX_ATTEMPTS = 50;
// BIGINT as bigint, as DuckDB gives it (pg's default is a string).
const INT8_OID = 20;
const types = { getTypeParser: ((oid: number, format?: "text" | "binary") => (oid === INT8_OID ? (v: string) => BigInt(v) : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser };

/**
 * The stores on a PostgreSQL database that many nodes share. Every task runs in a
 * SERIALIZABLE transaction, so it behaves as if it ran alone, as on DuckDB; one that
 * conflicts with another node's is run again. Cursor order is visibility order: an
 * extent's commit updates the one clock row, which orders those commits (SPEC §2).
 */
export class PostgresMetadataDb implements MetadataDb {
  readonly kind = "postgres";
  readonly shared = true;

  private constructor(private readonly pool: pg.Pool) {}

  /** Opens a pool to `url` (postgres://user:password@host:port/database) and checks that it answers. */
  static async open(url: string): Promise<PostgresMetadataDb> {
    const pool = new pg.Pool({ connectionString: url, max: 8, types });
    // An idle client that loses its server must not take the process down.
    pool.on("error", () => undefined);
    try {
      await pool.query("SELECT 1");
    } catch (err) {
      await pool.end().catch(() => undefined);
      // The URL's password must not appear: name the server and database only.
      throw new SpillwayError(ErrorCode.unavailable, `cannot reach the PostgreSQL metadata database ${describeUrl(url)}: ${(err as Error).message}`);
    }
    return new PostgresMetadataDb(pool);
  }

  async migrate(statements: string[]): Promise<void> {
    await this.transaction(async (q) => {
      // Nodes starting together would race to create the same tables.
      await q.run("SELECT pg_advisory_xact_lock(7263915)");
      for (const sql of statements) await q.run(sql.replace(/\bTIMESTAMP\b/g, "TIMESTAMPTZ"));
    });
  }

  exclusive<T>(task: (db: MetadataSession) => Promise<T>): Promise<T> {
    return this.transaction(task);
  }

  /** PostgreSQL runs transactions side by side already: a read is one of them. */
  read<T>(task: (db: MetadataSession) => Promise<T>): Promise<T> {
    return this.transaction(task);
  }

  /** One statement outside a transaction block: PostgreSQL gives it a snapshot of its own. */
  async select(sql: string, params: SqlValue[] = []): Promise<SqlRow[]> {
    return pgSession(this.pool).all(sql, params);
  }

  async transaction<T>(task: (db: MetadataSession) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
        const result = await task(pgSession(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {
          broken = true;
        });
        if (!RETRYABLE.has((err as { code?: string }).code ?? "") || attempt >= MAX_ATTEMPTS) throw err;
      } finally {
        client.release(broken);
      }
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function pgSession(client: pg.Pool | pg.PoolClient): MetadataSession {
  const all = async (sql: string, params: SqlValue[] = []) => (await client.query(sql, params.map(toPg))).rows as SqlRow[];
  return {
    run: async (sql, params) => void (await all(sql, params)),
    change: async (sql, params = []) => (await client.query(sql, params.map(toPg))).rowCount ?? 0,
    all,
    one: async (sql, params) => (await all(sql, params))[0],
    // Parameters are bound statement by statement: the extended protocol takes one at a time.
    runAll: async (statements) => {
      for (const [sql, params] of statements) await all(sql, params);
    },
  };
}

// An instant as UTC text: pg would write a Date in the process's local time zone.
const toPg = (v: SqlValue): unknown => (v instanceof Date ? v.toISOString() : typeof v === "bigint" ? v.toString() : v);

/** host:port/database of a PostgreSQL URL, without user or password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return "(unreadable URL)";
  }
}
