/** What a store puts in and reads out of its tables: an instant is a Date, a BIGINT a bigint. */
export type SqlValue = string | number | bigint | boolean | Date | null;
export type SqlRow = Record<string, SqlValue>;

/** The statements a store task may run ($1, $2, … parameters in both dialects). */
export interface MetadataSession {
  run(sql: string, params?: SqlValue[]): Promise<void>;
  /** Runs an INSERT, UPDATE or DELETE; how many rows it changed. */
  change(sql: string, params?: SqlValue[]): Promise<number>;
  all(sql: string, params?: SqlValue[]): Promise<SqlRow[]>;
  one(sql: string, params?: SqlValue[]): Promise<SqlRow | undefined>;
  /**
   * Runs writes whose results are not read, in order, in as few calls to the database as it
   * allows: on DuckDB one call for all, where each statement costs a call of its own through
   * the node bindings otherwise (bench #3), and in a transaction that call is the task's next
   * one, or its commit (a transaction of writes alone is then one call). Stops at the first
   * that fails; on DuckDB in a transaction, that failure may come from the next call and
   * fails the commit, so a task must not count on catching it here.
   */
  runAll(statements: ReadonlyArray<SqlStatement>): Promise<void>;
}

/** A statement and its parameters ($1, $2, …). */
export type SqlStatement = readonly [sql: string, params?: SqlValue[]];

/**
 * Where the catalog and cursor stores keep their tables (DESIGN "Scale-out"): an embedded
 * DuckDB file that one process holds, or a PostgreSQL database that many nodes share. The
 * stores write one SQL for both; a task sees the database as if it ran alone.
 */
export interface MetadataDb {
  readonly kind: "duckdb" | "postgres";
  /**
   * Other processes write this database too (PostgreSQL): what a store keeps in memory must
   * be checked against it, and nothing in it belongs to this process alone (e.g. leases).
   */
  readonly shared: boolean;
  /** Creates or upgrades the store's tables; the SQL names TIMESTAMP for an instant in UTC. */
  migrate(statements: string[]): Promise<void>;
  /** Runs `task` alone: no other task's writes appear or interleave while it runs. */
  exclusive<T>(task: (db: MetadataSession) => Promise<T>): Promise<T>;
  /**
   * Runs `task`, which only reads, beside the writing tasks rather than behind them: its
   * statements see what was committed when it began, all the same moment.
   */
  read<T>(task: (db: MetadataSession) => Promise<T>): Promise<T>;
  /** One statement that only reads, beside the writing tasks, as `read` runs it without a transaction around it. */
  select(sql: string, params?: SqlValue[]): Promise<SqlRow[]>;
  /**
   * Runs `task` in a transaction that commits if it returns and rolls back if it throws. A
   * task may run more than once: on PostgreSQL a conflict with another node's transaction
   * runs it again from the start, and on DuckDB so does a failure of another transaction
   * committed with it (SerialConnection's group commit). So a task must do nothing but its
   * statements.
   */
  transaction<T>(task: (db: MetadataSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
