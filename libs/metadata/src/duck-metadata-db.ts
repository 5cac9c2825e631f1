import { DuckDBTimestampValue, type DuckDBValue } from "@duckdb/node-api";
import { inlineParams, SerialConnection, type Queryable, type Row } from "@spillway/duck";
import type { MetadataDb, MetadataSession, SqlRow, SqlStatement, SqlValue } from "./metadata-db.js";

/**
 * The embedded default: one DuckDB file that this process alone holds (DuckDB locks it).
 * Tasks run one at a time on one connection, so "read, decide, write" is atomic with no
 * conflicts to retry.
 */
export class DuckMetadataDb implements MetadataDb {
  readonly kind = "duckdb";
  readonly shared = false;

  private constructor(private readonly db: SerialConnection) {}

  static async open(file: string): Promise<DuckMetadataDb> {
    return new DuckMetadataDb(await SerialConnection.open(file));
  }

  /**
   * Each statement commits on its own: DuckDB refuses to commit a transaction that changed a
   * table's rows and then added a column to it ("another transaction has altered this table"),
   * which an upgrade from an older store does. Migrations are written to run again after a
   * partial one (IF NOT EXISTS, IS NULL), and one process holds the file meanwhile.
   */
  async migrate(statements: string[]): Promise<void> {
    await this.db.exclusive(async (q) => {
      for (const sql of statements) await q.run(sql);
    });
  }

  exclusive<T>(task: (db: MetadataSession) => Promise<T>): Promise<T> {
    return this.db.exclusive((q) => task(duckSession(q)));
  }

  transaction<T>(task: (db: MetadataSession) => Promise<T>): Promise<T> {
    return this.db.transaction((q) => task(duckSession(q)));
  }

  read<T>(task: (db: MetadataSession) => Promise<T>): Promise<T> {
    return this.db.read((q) => task(duckSession(q)));
  }

  async select(sql: string, params: SqlValue[] = []): Promise<SqlRow[]> {
    return (await this.db.select(sql, params.map(toDuck))).map(fromDuck);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function duckSession(q: Queryable): MetadataSession {
  const run = (sql: string, params: SqlValue[] = []) => q.run(sql, params.map(toDuck));
  return {
    run,
    change: (sql, params = []) => q.change(sql, params.map(toDuck)),
    all: async (sql, params = []) => (await q.all(sql, params.map(toDuck))).map(fromDuck),
    one: async (sql, params = []) => {
      const row = await q.one(sql, params.map(toDuck));
      return row && fromDuck(row);
    },
    runAll: async (statements) => {
      if (statements.length === 0) return;
      const script = inlinedScript(statements);
      // In a transaction it goes with the next call, the commit at the latest.
      if (script !== undefined) return q.runWithNext(script);
      for (const [sql, params] of statements) await run(sql, params);
    },
  };
}

/**
 * The statements as one script, each parameter written in as a DuckDB literal (a script of
 * several statements cannot be prepared); undefined when a value has no exact literal, and
 * the statements run one by one with their parameters bound.
 */
export function inlinedScript(statements: ReadonlyArray<SqlStatement>): string | undefined {
  const parts: string[] = [];
  for (const [sql, params = []] of statements) {
    const inlined = inlineParams(sql, params.map(toDuck));
    if (inlined === undefined) return undefined;
    parts.push(inlined);
  }
  return parts.join(";\n");
}

const toDuck = (v: SqlValue): DuckDBValue => (v instanceof Date ? new DuckDBTimestampValue(BigInt(v.getTime()) * 1000n) : v);

function fromDuck(row: Row): SqlRow {
  const out: SqlRow = {};
  for (const [k, v] of Object.entries(row)) out[k] = v instanceof DuckDBTimestampValue ? new Date(Number(v.micros / 1000n)) : (v as SqlValue);
  return out;
}
