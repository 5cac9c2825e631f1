import { DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement, type DuckDBValue } from "@duckdb/node-api";
import { inlineParams } from "./inline-params.js";
import { readMaterialized, runMaterialized } from "./read-result.js";

/**
 * One DuckDB connection used by one task at a time. Stores keep their invariants
 * in transactions; serializing them in-process makes "read, decide, write" atomic
 * without retry loops on write conflicts.
 */
export class SerialConnection {
  /** Once closing, new tasks are refused: a statement on a closed connection would take the process down. */
  private closed = false;
  private readonly writer: Lane;
  /**
   * Connections for reads alone: they see what was committed, without waiting behind writes.
   * Two, so a run's one-statement reads need not wait behind a long listing (bench #6).
   */
  private readonly readers: Lane[];
  /** Transactions waiting for the writer, to run as one (see transaction); none while it is not waiting. */
  private group?: GroupMember[];

  private constructor(
    private readonly instance: DuckDBInstance,
    writer: DuckDBConnection,
    readers: DuckDBConnection[],
  ) {
    this.writer = new Lane(writer);
    this.readers = readers.map((r) => new Lane(r));
  }

  static async open(path: string): Promise<SerialConnection> {
    // Stores run many tiny statements one at a time: one thread spares DuckDB scheduling
    // parallel tasks for them (a small write transaction took half the time in our bench).
    const instance = await DuckDBInstance.create(path, { threads: "1" });
    const connections = await Promise.all(Array.from({ length: 1 + READERS }, () => instance.connect()));
    return new SerialConnection(instance, connections[0]!, connections.slice(1));
  }

  /**
   * Runs `task`, which only reads, on the reader connection with the fewest tasks waiting, side
   * by side with the writer's tasks rather than queued behind them. It runs in a transaction
   * of its own, so its statements all see what was committed when it began (DuckDB's MVCC).
   */
  read<T>(task: (db: Queryable) => Promise<T>): Promise<T> {
    return this.queue(this.reader(), async (db) => {
      db.beginWithFirstStatement();
      try {
        return await task(db);
      } finally {
        // Nothing was written: ending it either way only lets its snapshot go.
        await db.end("ROLLBACK").catch(() => undefined);
      }
    });
  }

  /**
   * One read-only statement on the reader connection: a statement sees one moment by
   * itself, so it needs no transaction around it (two statements fewer than `read`).
   */
  select(sql: string, params: DuckDBValue[] = []): Promise<Row[]> {
    return this.queue(this.reader(), (db) => db.all(sql, params));
  }

  /** Runs `task` alone on the connection. */
  exclusive<T>(task: (db: Queryable) => Promise<T>): Promise<T> {
    // Tasks keep the order they were asked in: a transaction asked after this one joins no group before it.
    this.group = undefined;
    return this.queue(this.writer, task);
  }

  /** Runs `task` on `lane`'s connection, after the tasks queued there before it. */
  private queue<T>(lane: Lane, task: (db: Queryable) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    lane.waiting++;
    const run = lane.tail.then(() => task(lane.db)).finally(() => lane.waiting--);
    lane.tail = run.catch(() => undefined);
    return run;
  }

  /** The reader with the fewest tasks queued or running. */
  private reader(): Lane {
    return this.readers.reduce((best, lane) => (lane.waiting < best.waiting ? lane : best));
  }

  /**
   * Runs `task` alone, inside a transaction that commits if it returns and rolls back if it
   * throws. Transactions asked for while the writer is busy wait as one group and then run in
   * one DuckDB transaction, one after the other, with one commit (a group commit): the commit
   * is a third of a small transaction's time, and under many runs at once the writer is the
   * store's bottleneck (bench #6). Should one of them throw, the group is rolled back and they
   * run again, that one alone (see runGroup): a task may run more than once, and must do
   * nothing but its statements (as MetadataDb.transaction asks of every store task).
   */
  transaction<T>(task: (db: Queryable) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    return new Promise<T>((resolve, reject) => {
      const member: GroupMember = { task, resolve: resolve as (value: unknown) => void, reject };
      if (this.group && this.group.length < MAX_GROUP) {
        this.group.push(member);
        return;
      }
      const group = [member];
      this.group = group;
      void this.queue(this.writer, async (db) => {
        // Closed to newcomers once it runs: they form the next group.
        if (this.group === group) this.group = undefined;
        await runGroup(db, group);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.writer, ...this.readers].map((lane) => lane.close()));
    this.instance.closeSync();
  }
}

/** A transaction waiting to run with others, and how to answer its caller. */
interface GroupMember {
  task: (db: Queryable) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/** Connections for reads beside the writer's. */
const READERS = 2;

/** Transactions run as one at most: the first of a group waits for the rest before its commit. */
const MAX_GROUP = 16;

/**
 * Runs a group of transactions in the order asked, as one DuckDB transaction where it can:
 * each sees what those before it wrote, as if they had run one by one. When one throws, none
 * of the group stays: those before it run again (as a group), then it runs alone on what they
 * committed, so it fails or not as it would have in its place, and those after it go on as a
 * group. When the transaction itself fails (its begin or its commit), each runs alone.
 */
async function runGroup(db: Queryable, group: GroupMember[]): Promise<void> {
  let rest = group;
  while (rest.length > 1) {
    const outcome = await runAsOne(db, rest);
    if (outcome === "committed") return;
    if (outcome.failedAt === undefined) break;
    if (outcome.failedAt > 0) await runGroup(db, rest.slice(0, outcome.failedAt));
    await runAlone(db, rest[outcome.failedAt]!);
    rest = rest.slice(outcome.failedAt + 1);
  }
  for (const member of rest) await runAlone(db, member);
}

/**
 * Runs `members` in one transaction; answers each when it commits. Otherwise nothing of them
 * stays and none is answered: what failed, and the index of the one that threw (none when
 * the commit failed; a failed begin goes with the statement that opened the transaction).
 */
async function runAsOne(db: Queryable, members: GroupMember[]): Promise<"committed" | { failedAt?: number; error: unknown }> {
  const results: unknown[] = [];
  let failedAt: number | undefined;
  try {
    db.beginWithFirstStatement();
    for (const member of members) {
      failedAt = results.length;
      results.push(await member.task(db));
    }
    failedAt = undefined;
    await db.end("COMMIT");
  } catch (error) {
    await db.end("ROLLBACK").catch(() => undefined);
    return { failedAt, error };
  }
  members.forEach((member, i) => member.resolve(results[i]));
  return "committed";
}

async function runAlone(db: Queryable, member: GroupMember): Promise<void> {
  const outcome = await runAsOne(db, [member]);
  if (outcome !== "committed") member.reject(outcome.error);
}

/** One connection, its prepared statements, and the tasks queued on it, one at a time. */
class Lane {
  tail: Promise<unknown> = Promise.resolve();
  /** Tasks queued or running on it. */
  waiting = 0;
  private readonly statements: PreparedStatements;
  readonly db: Queryable;

  constructor(private readonly connection: DuckDBConnection) {
    this.statements = new PreparedStatements(connection);
    this.db = new Queryable(connection, this.statements);
  }

  /** Once its queued tasks are done. */
  async close(): Promise<void> {
    await this.tail;
    await this.statements.destroy();
    this.connection.closeSync();
  }
}

export type Row = Record<string, DuckDBValue>;

/**
 * The connection's prepared statements, by SQL text. A statement with parameters is
 * otherwise prepared again on every call, and preparing is about a third of a small
 * statement's time (0.7 → 0.45 ms measured for a keyed SELECT); a run of an export makes
 * some twenty of them. Statements are only used one task at a time (SerialConnection);
 * within a task, a statement already running is not bound again (see `with`). Bounded,
 * since some SQL is built per call (IN lists).
 */
class PreparedStatements {
  private static readonly MAX = 128;
  private readonly bySql = new Map<string, Promise<DuckDBPreparedStatement>>();
  private readonly busy = new Set<DuckDBPreparedStatement>();
  /** Let go of while running; destroyed when their query ends. */
  private readonly evicted = new Set<DuckDBPreparedStatement>();

  constructor(private readonly connection: DuckDBConnection) {}

  /**
   * Runs `use` with the statement for `sql`, bound to `params`. Should the statement be in
   * use already (two queries of one task in flight at once), this call prepares its own.
   */
  async with<T>(sql: string, params: DuckDBValue[], use: (statement: DuckDBPreparedStatement) => Promise<T>): Promise<T> {
    const statement = await this.get(sql);
    if (this.busy.has(statement)) {
      const own = await this.connection.prepare(sql);
      try {
        own.bind(params);
        return await use(own);
      } finally {
        own.destroySync();
      }
    }
    this.busy.add(statement);
    try {
      statement.bind(params);
      return await use(statement);
    } finally {
      this.busy.delete(statement);
      if (this.evicted.delete(statement)) statement.destroySync();
    }
  }

  private async get(sql: string): Promise<DuckDBPreparedStatement> {
    let statement = this.bySql.get(sql);
    if (statement) {
      // Most recently used last, so eviction takes the least recently used.
      this.bySql.delete(sql);
    } else {
      const prepared = this.connection.prepare(sql);
      prepared.catch(() => {
        if (this.bySql.get(sql) === prepared) this.bySql.delete(sql);
      });
      statement = prepared;
      if (this.bySql.size >= PreparedStatements.MAX) this.evictOldest();
    }
    this.bySql.set(sql, statement);
    return statement;
  }

  private evictOldest(): void {
    const [sql, statement] = this.bySql.entries().next().value!;
    this.bySql.delete(sql);
    // One still running is let go when its query ends (see `with`), not under it.
    void statement.then((s) => (this.busy.has(s) ? this.evicted.add(s) : s.destroySync()), () => undefined);
  }

  async destroy(): Promise<void> {
    const statements = await Promise.allSettled(this.bySql.values());
    this.bySql.clear();
    for (const s of statements) if (s.status === "fulfilled") s.value.destroySync();
  }
}

/** The statements a store task may run. */
export class Queryable {
  /** A transaction's `BEGIN` not sent yet: it goes with the first statement (see beginWithFirstStatement). */
  private beginPending = false;
  /**
   * The call opening the transaction, while it is under way: statements the task runs beside
   * it, and the transaction's end, wait for it, so none runs outside the transaction.
   */
  private opening?: Promise<void>;
  /** Between beginWithFirstStatement and end: writes may wait for the next call (runWithNext). */
  private inTransaction = false;
  /** Writes no one reads the result of, not sent yet: they go with the next call, the commit at the latest (runWithNext). */
  private deferred: string[] = [];
  /** A call that carried deferred writes failed: the transaction must not commit without them. */
  private deferredFailure?: unknown;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly statements: PreparedStatements,
  ) {}

  /**
   * Opens a transaction with the next statement: `BEGIN` and that statement as one script,
   * its parameters written in (inlineParams), where they can be; otherwise `BEGIN` on its own
   * first. Every statement is a trip through libuv's thread pool, queued with every other
   * DuckDB call of the process: a run's three write transactions made three trips fewer
   * (README, bench #3).
   */
  beginWithFirstStatement(): void {
    this.beginPending = true;
    this.inTransaction = true;
    this.deferred = [];
    this.deferredFailure = undefined;
  }

  /**
   * Ends the transaction with `COMMIT` or `ROLLBACK`; one in which no statement ran was never
   * begun. Writes still deferred go with the `COMMIT`, in its call: one whose every write was
   * deferred is one call, `BEGIN` to `COMMIT`. Should that call fail, nothing of it stays.
   */
  async end(how: "COMMIT" | "ROLLBACK"): Promise<void> {
    while (this.opening) await this.opening;
    const deferred = this.deferred;
    const failure = this.deferredFailure;
    const begun = !this.beginPending;
    this.deferred = [];
    this.deferredFailure = undefined;
    this.inTransaction = false;
    this.beginPending = false;
    if (how === "COMMIT" && failure !== undefined) {
      if (begun) await this.connection.run("ROLLBACK").catch(() => undefined);
      throw failure;
    }
    if (how === "COMMIT" && deferred.length) {
      try {
        await this.connection.run(`${begun ? "" : "BEGIN TRANSACTION;\n"}${deferred.join(";\n")};\nCOMMIT`);
      } catch (err) {
        // What ran of the script before the failure is undone: the transaction is not left open.
        await this.connection.run("ROLLBACK").catch(() => undefined);
        throw err;
      }
      return;
    }
    if (begun) await this.connection.run(how);
  }

  async run(sql: string, params: DuckDBValue[] = []): Promise<void> {
    await this.execute(sql, params);
  }

  /**
   * Statements whose results no one reads (a script: one or more, `;`-separated, parameters
   * written in). In a transaction they are sent with the task's next call, or with its
   * `COMMIT`, rather than in a call of their own: each call is a trip through libuv's thread
   * pool (bench #3: a run's three write transactions made three trips fewer). Their failure
   * then fails that call, and the commit: a transaction never commits without them. Outside
   * a transaction they run at once.
   */
  async runWithNext(script: string): Promise<void> {
    if (!this.inTransaction) {
      await this.connection.run(script);
      return;
    }
    this.deferred.push(script);
  }

  /** Runs an INSERT, UPDATE or DELETE; how many rows it changed. */
  async change(sql: string, params: DuckDBValue[] = []): Promise<number> {
    return Number((await this.execute(sql, params)).rowsChanged);
  }

  private execute(sql: string, params: DuckDBValue[]) {
    return this.send(sql, params, (script) => this.connection.run(script), () =>
      params.length ? this.statements.with(sql, params, (statement) => statement.run()) : this.connection.run(sql),
    );
  }

  async all(sql: string, params: DuckDBValue[] = []): Promise<Row[]> {
    const result = await this.send(sql, params, (script) => runMaterialized(this.connection, script), async () =>
      params.length ? this.statements.with(sql, params, async (statement) => readMaterialized(await statement.run())) : runMaterialized(this.connection, sql),
    );
    return result.getRowObjects();
  }

  async one(sql: string, params: DuckDBValue[] = []): Promise<Row | undefined> {
    return (await this.all(sql, params))[0];
  }

  /**
   * Sends a statement in as few calls as it can: with `BEGIN` when it opens the transaction,
   * after the deferred writes when there are some (runWithNext), as one script, its
   * parameters written in (inlineParams); `bound` runs it alone, its parameters bound, when it
   * cannot be written so. DuckDB answers a script with its last statement's result.
   */
  private async send<T>(sql: string, params: DuckDBValue[], script: (text: string) => Promise<T>, bound: () => Promise<T>): Promise<T> {
    const opensHere = this.beginPending && !this.opening;
    const inlined = opensHere || this.deferred.length ? inlineParams(sql, params) : undefined;
    if (opensHere && inlined !== undefined) {
      const deferred = this.takeDeferred();
      return this.opens(this.carrying(deferred, script(`BEGIN TRANSACTION;\n${deferred ? `${deferred};\n` : ""}${inlined}`)));
    }
    await this.opened();
    const deferred = this.takeDeferred();
    if (deferred && inlined !== undefined) return this.carrying(deferred, script(`${deferred};\n${inlined}`));
    if (deferred) await this.carrying(deferred, this.connection.run(deferred));
    return bound();
  }

  /** The deferred writes, as one script, taken to go with the call about to be made. */
  private takeDeferred(): string | undefined {
    if (!this.deferred.length) return undefined;
    const script = this.deferred.join(";\n");
    this.deferred = [];
    return script;
  }

  /**
   * `call`, which carries the deferred writes `deferred`: its failure is theirs as well (which
   * of its statements failed is not known), and the transaction must not commit without them.
   */
  private carrying<T>(deferred: string | undefined, call: Promise<T>): Promise<T> {
    if (deferred === undefined) return call;
    return call.catch((err: unknown) => {
      this.deferredFailure ??= err;
      throw err;
    });
  }

  /**
   * `first` opens the transaction. Should it fail, what ran of it is rolled back (DuckDB parses
   * a script whole before running it, so `BEGIN` may not have run) and the next statement
   * opens the transaction again: as if its first statement had failed inside it.
   */
  private opens<T>(first: Promise<T>): Promise<T> {
    this.beginPending = false;
    const opening: Promise<void> = first
      .then(
        () => undefined,
        async () => {
          await this.connection.run("ROLLBACK").catch(() => undefined);
          this.beginPending = true;
        },
      )
      .finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    this.opening = opening;
    return first;
  }

  /** Once the transaction is open: after the call opening it, or `BEGIN` sent alone now. */
  private async opened(): Promise<void> {
    while (this.opening) await this.opening;
    if (this.beginPending) await this.opens(this.connection.run("BEGIN TRANSACTION"));
  }
}
