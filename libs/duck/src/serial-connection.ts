import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from "@duckdb/node-api";

/**
 * One DuckDB connection used by one task at a time. Stores keep their invariants
 * in transactions; serializing them in-process makes "read, decide, write" atomic
 * without retry loops on write conflicts.
 */
export class SerialConnection {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(path: string): Promise<SerialConnection> {
    // Stores run many tiny statements one at a time: one thread spares DuckDB scheduling
    // parallel tasks for them (a small write transaction took half the time in our bench).
    const instance = await DuckDBInstance.create(path, { threads: "1" });
    return new SerialConnection(instance, await instance.connect());
  }

  /** Runs `task` alone on the connection. */
  exclusive<T>(task: (db: Queryable) => Promise<T>): Promise<T> {
    const run = this.tail.then(() => task(new Queryable(this.connection)));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Runs `task` alone, inside a transaction that commits if it returns and rolls back if it throws. */
  transaction<T>(task: (db: Queryable) => Promise<T>): Promise<T> {
    return this.exclusive(async (db) => {
      await db.run("BEGIN TRANSACTION");
      try {
        const result = await task(db);
        await db.run("COMMIT");
        return result;
      } catch (err) {
        await db.run("ROLLBACK").catch(() => undefined);
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.tail;
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

export type Row = Record<string, DuckDBValue>;

/** The statements a store task may run. */
export class Queryable {
  constructor(private readonly connection: DuckDBConnection) {}

  async run(sql: string, params: DuckDBValue[] = []): Promise<void> {
    await this.connection.run(sql, params.length ? params : undefined);
  }

  async all(sql: string, params: DuckDBValue[] = []): Promise<Row[]> {
    const reader = await this.connection.runAndReadAll(sql, params.length ? params : undefined);
    return reader.getRowObjects();
  }

  async one(sql: string, params: DuckDBValue[] = []): Promise<Row | undefined> {
    return (await this.all(sql, params))[0];
  }
}
