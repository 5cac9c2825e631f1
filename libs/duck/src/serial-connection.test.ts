import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DuckDBConnection, DuckDBPreparedStatement } from "@duckdb/node-api";
import { SerialConnection, type Queryable } from "./serial-connection.js";

let dir: string;
let db: SerialConnection;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "spillway-serial-"));
  db = await SerialConnection.open(join(dir, "store.duckdb"));
  await db.exclusive((q) => q.run("CREATE TABLE kv (k VARCHAR PRIMARY KEY, v BIGINT)"));
});

afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

// Statements with parameters are prepared once and kept; these check that what is kept
// gives the same answers as preparing afresh would.
it("runs one parameterized statement many times with the values of each call", async () => {
  await db.transaction(async (q) => {
    for (let i = 0; i < 20; i++) await q.run("INSERT INTO kv VALUES ($1, $2)", [`k${i}`, BigInt(i * 10)]);
  });
  const read = await db.exclusive(async (q) => Promise.all([5, 7, 19].map(async (i) => (await q.one("SELECT v FROM kv WHERE k = $1", [`k${i}`]))?.v)));
  expect(read).toEqual([50n, 70n, 190n]);
});

it("keeps working past the number of statements it keeps, including the ones it let go", async () => {
  const sums = await db.exclusive(async (q) => {
    const out: unknown[] = [];
    for (let n = 0; n < 300; n++) out.push((await q.one(`SELECT $1::BIGINT + ${n} AS s`, [1n]))?.s);
    for (let n = 0; n < 3; n++) out.push((await q.one(`SELECT $1::BIGINT + ${n} AS s`, [100n]))?.s);
    return out;
  });
  expect(sums.slice(0, 3)).toEqual([1n, 2n, 3n]);
  expect(sums[299]).toBe(300n);
  expect(sums.slice(300)).toEqual([100n, 101n, 102n]);
});

it("reports a statement that does not prepare, every time, and goes on", async () => {
  for (let i = 0; i < 2; i++) {
    await expect(db.exclusive((q) => q.all("SELEC v FROM kv WHERE k = $1", ["k1"]))).rejects.toThrow(/syntax error/i);
  }
  expect(await db.exclusive((q) => q.one("SELECT v FROM kv WHERE k = $1", ["k1"]))).toEqual({ v: 10n });
});

it("sees a table's new columns through a statement prepared before they were added", async () => {
  const before = await db.exclusive((q) => q.one("SELECT * FROM kv WHERE k = $1", ["k2"]));
  await db.exclusive((q) => q.run("ALTER TABLE kv ADD COLUMN note VARCHAR DEFAULT 'n'"));
  const after = await db.exclusive((q) => q.one("SELECT * FROM kv WHERE k = $1", ["k2"]));
  expect(before).toEqual({ k: "k2", v: 20n });
  expect(after).toEqual({ k: "k2", v: 20n, note: "n" });
});

/**
 * Starts a task through `start` that does `work`, then waits inside it until the returned
 * function is called (which answers what the task did): its connection is held meanwhile.
 */
async function holding<T>(start: (task: (q: Queryable) => Promise<T>) => Promise<T>, work: (q: Queryable) => Promise<T> = async () => undefined as T): Promise<() => Promise<T>> {
  let entered!: () => void;
  let release!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const held = start(async (q) => {
    const done = await work(q);
    entered();
    await new Promise<void>((r) => (release = r));
    return done;
  });
  await inside;
  return () => {
    release();
    return held;
  };
}

/** Holds the writer until the returned function is called: what is asked meanwhile waits. */
const holdWriter = () => holding((task) => db.exclusive(task));

it("answers a one-statement read beside a write transaction, with what was committed before it", async () => {
  const finish = await holding((task) => db.transaction(task), (q) => q.run("UPDATE kv SET v = 999 WHERE k = $1", ["k3"]));
  // The write transaction holds the writer connection: a read behind it would never come back.
  expect(await db.select("SELECT v FROM kv WHERE k = $1", ["k3"])).toEqual([{ v: 30n }]);
  await finish();
  expect(await db.select("SELECT v FROM kv WHERE k = $1", ["k3"])).toEqual([{ v: 999n }]);
  await expect(db.select("SELEC 1")).rejects.toThrow(/syntax error/i);
});

it("runs transactions asked for while the writer is busy as one, each seeing what those before it wrote", async () => {
  await db.exclusive((q) => q.run("CREATE TABLE grouped (n BIGINT, tx BIGINT)"));
  const release = await holdWriter();
  const asked = [1, 2, 3, 4].map((n) =>
    db.transaction(async (q) => {
      const before = (await q.one("SELECT count(*) AS c FROM grouped"))!.c;
      await q.run("INSERT INTO grouped SELECT $1, txid_current()", [BigInt(n)]);
      return before;
    }),
  );
  await release();
  expect(await Promise.all(asked)).toEqual([0n, 1n, 2n, 3n]);
  const rows = await db.select("SELECT n, tx FROM grouped ORDER BY n");
  expect(rows.map((r) => r.n)).toEqual([1n, 2n, 3n, 4n]);
  // One DuckDB transaction for the four.
  expect(new Set(rows.map((r) => r.tx)).size).toBe(1);
});

it("fails only the transaction of a group that throws: the others commit, its writes do not", async () => {
  await db.exclusive((q) => q.run("CREATE TABLE group_fail (n BIGINT)"));
  const release = await holdWriter();
  let runs = 0;
  const asked = [1, 2, 3].map((n) =>
    db.transaction(async (q) => {
      runs++;
      await q.run("INSERT INTO group_fail VALUES ($1)", [BigInt(n)]);
      if (n === 2) throw new Error("two is refused");
      return n;
    }),
  );
  await release();
  const settled = await Promise.allSettled(asked);
  expect(settled.map((s) => (s.status === "fulfilled" ? s.value : (s.reason as Error).message))).toEqual([1, "two is refused", 3]);
  expect((await db.select("SELECT n FROM group_fail ORDER BY n")).map((r) => r.n)).toEqual([1n, 3n]);
  // Two in the group (the third never began); then the first again, the second alone on what
  // the first committed (it throws again), and the third.
  expect(runs).toBe(5);
});

it("keeps the order tasks were asked in: a transaction asked after an exclusive task runs after it", async () => {
  await db.exclusive((q) => q.run("CREATE TABLE asked_order (step VARCHAR)"));
  const release = await holdWriter();
  const first = db.transaction((q) => q.run("INSERT INTO asked_order VALUES ('first transaction')"));
  const plain = db.exclusive((q) => q.run("INSERT INTO asked_order VALUES ('exclusive')"));
  const second = db.transaction((q) => q.run("INSERT INTO asked_order VALUES ('second transaction')"));
  await release();
  await Promise.all([first, plain, second]);
  expect((await db.select("SELECT step FROM asked_order ORDER BY rowid")).map((r) => r.step)).toEqual(["first transaction", "exclusive", "second transaction"]);
});

it("answers a read beside a read that takes long: reads have more than one connection", async () => {
  const finish = await holding((task) => db.read(task), (q) => q.one("SELECT v FROM kv WHERE k = $1", ["k1"]));
  // With one reader connection this would wait for the long read, which waits for it: never.
  const stuck = new Promise((_, reject) => setTimeout(() => reject(new Error("the read waited behind the long one")), 5_000).unref());
  expect(await Promise.race([db.select("SELECT v FROM kv WHERE k = $1", ["k4"]), stuck])).toEqual([{ v: 40n }]);
  expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["k5"]))).toEqual({ v: 50n });
  expect(await finish()).toEqual({ v: 10n });
});

it("runs each transaction of a group alone when the group's commit is refused, and both land", async () => {
  await db.exclusive(async (q) => {
    await q.run("CREATE TABLE altered (n BIGINT)");
    await q.run("INSERT INTO altered VALUES (1)");
  });
  const release = await holdWriter();
  // DuckDB refuses to commit rows changed and then a column added to their table in one transaction.
  const update = db.transaction((q) => q.run("UPDATE altered SET n = 2"));
  const alter = db.transaction((q) => q.run("ALTER TABLE altered ADD COLUMN note VARCHAR DEFAULT 'added'"));
  await release();
  await Promise.all([update, alter]);
  expect(await db.select("SELECT n, note FROM altered")).toEqual([{ n: 2n, note: "added" }]);
});

it("answers a transaction refused for what one before it in the group wrote only once that one has committed", async () => {
  await db.exclusive((q) => q.run("CREATE TABLE names (name VARCHAR)"));
  const release = await holdWriter();
  const settled: string[] = [];
  const create = (name: string, who: string) =>
    db
      .transaction(async (q) => {
        if (await q.one("SELECT name FROM names WHERE name = $1", [name])) throw new Error(`${name} exists`);
        await q.run("INSERT INTO names VALUES ($1)", [name]);
      })
      .then(
        () => settled.push(`${who} created`),
        (err: Error) => settled.push(`${who}: ${err.message}`),
      );
  const asked = [create("T", "a"), create("T", "b"), create("U", "c")];
  await release();
  await Promise.all(asked);
  expect(settled).toEqual(["a created", "b: T exists", "c created"]);
  expect((await db.select("SELECT name FROM names ORDER BY name")).map((r) => r.name)).toEqual(["T", "U"]);
});

describe("a transaction's BEGIN, sent with its first statement", () => {
  /** Counts the calls that reach DuckDB (scripts and prepared statements' runs) while `work` runs. */
  async function tripsOf(work: () => Promise<unknown>): Promise<number> {
    const scripts = vi.spyOn(DuckDBConnection.prototype, "run");
    const prepared = vi.spyOn(DuckDBPreparedStatement.prototype, "run");
    try {
      await work();
      return scripts.mock.calls.length + prepared.mock.calls.length;
    } finally {
      scripts.mockRestore();
      prepared.mockRestore();
    }
  }

  it("makes a one-statement transaction two trips, its statement with BEGIN and COMMIT, and it commits", async () => {
    expect(await tripsOf(() => db.transaction((q) => q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-1", 1n])))).toBe(2);
    expect(await tripsOf(() => db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-1"])))).toBe(2);
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-1"]))).toEqual({ v: 1n });
    // A first statement that reads gives its rows, and one that changes rows says how many.
    expect(await db.transaction((q) => q.change("UPDATE kv SET v = v + $2 WHERE k = $1", ["trip-1", 10n]))).toBe(1);
    expect(await db.transaction(async (q) => (await q.all("SELECT v FROM kv WHERE k = $1", ["trip-1"])).map((r) => r.v))).toEqual([11n]);
  });

  it("sends BEGIN on its own before a statement its parameters cannot be written into, in the same transaction", async () => {
    const written = db.transaction(async (q) => {
      await q.run('INSERT INTO kv ("k", v) VALUES ($1, $2)', ["trip-2", 2n]);
      throw new Error("no commit");
    });
    await expect(written).rejects.toThrow("no commit");
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-2"]))).toBeUndefined();
  });

  it("rolls back a transaction whose first statement fails, and the next one begins afresh", async () => {
    await db.exclusive((q) => q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-dup", 1n]));
    await expect(db.transaction((q) => q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-dup", 3n]))).rejects.toThrow(/duplicate|constraint/i);
    await expect(db.transaction((q) => q.run("INSERT INTO kv (k, v) VALUES ($1, $2", ["x", 1n]))).rejects.toThrow(/syntax/i);
    expect(await db.transaction(async (q) => (await q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-3", 3n]), q.change("UPDATE kv SET v = 4 WHERE k = $1", ["trip-3"])))).toBe(1);
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-3"]))).toEqual({ v: 4n });
  });

  it("sends nothing for a transaction that runs no statement, and a task alone after it commits at once", async () => {
    expect(await tripsOf(() => db.transaction(async () => "nothing"))).toBe(0);
    await expect(db.transaction(async () => Promise.reject(new Error("before any statement")))).rejects.toThrow("before any statement");
    await db.exclusive((q) => q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-4", 4n]));
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-4"]))).toEqual({ v: 4n });
  });

  it("keeps a task's later statements in its transaction when its first one failed and it went on", async () => {
    const written = db.transaction(async (q) => {
      // A syntax error: DuckDB refuses the script whole, BEGIN with it.
      await q.run("INSERT INTO kv (k, v) VALUES ($1, $2", ["x", 1n]).catch(() => undefined);
      await q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-5", 5n]);
      throw new Error("no commit");
    });
    await expect(written).rejects.toThrow("no commit");
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-5"]))).toBeUndefined();
  });

  it("runs statements a task sends side by side inside its transaction", async () => {
    for (let i = 0; i < 20; i++) {
      const written = db.transaction(async (q) => {
        await Promise.all([q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", [`side-a${i}`, 1n]), q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", [`side-b${i}`, 2n])]);
        throw new Error("no commit");
      });
      await expect(written).rejects.toThrow("no commit");
    }
    expect(await db.read((q) => q.all("SELECT k FROM kv WHERE k LIKE 'side-%'"))).toEqual([]);
  });

  it("sends writes no one reads with the task's next call or its COMMIT: a transaction of such writes alone is one trip", async () => {
    const insert = (k: string, v: number) => `INSERT INTO kv (k, v) VALUES ('${k}', ${v})`;
    expect(await tripsOf(() => db.transaction((q) => q.runWithNext(`${insert("later-1", 1)};\n${insert("later-2", 2)}`)))).toBe(1);
    // Before a read in the same task: the read sees them, and they go in its call.
    const trips = await tripsOf(async () => {
      const seen = await db.transaction(async (q) => {
        await q.runWithNext(insert("later-3", 3));
        return q.one("SELECT v FROM kv WHERE k = $1", ["later-3"]);
      });
      expect(seen).toEqual({ v: 3n });
    });
    expect(trips).toBe(2);
    expect(await db.read((q) => q.all("SELECT v FROM kv WHERE k LIKE 'later-%' ORDER BY k"))).toEqual([{ v: 1n }, { v: 2n }, { v: 3n }]);
    // Outside a transaction they run at once.
    await db.exclusive((q) => q.runWithNext(insert("later-4", 4)));
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["later-4"]))).toEqual({ v: 4n });
  });

  it("commits nothing of a transaction whose deferred write fails, even when the task caught the failure of the call that carried it", async () => {
    await db.exclusive((q) => q.run("INSERT INTO kv (k, v) VALUES ('defer-dup', 1)"));
    // Failing with the COMMIT: the write before it does not stay.
    await expect(
      db.transaction(async (q) => {
        await q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["defer-a", 1n]);
        await q.runWithNext("INSERT INTO kv (k, v) VALUES ('defer-dup', 2)");
      }),
    ).rejects.toThrow(/duplicate|constraint/i);
    // Failing with a later statement's call, which the task catches and goes on.
    await expect(
      db.transaction(async (q) => {
        await q.runWithNext("INSERT INTO kv (k, v) VALUES ('defer-dup', 3)");
        await q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["defer-b", 1n]).catch(() => undefined);
        await q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["defer-c", 1n]);
      }),
    ).rejects.toThrow(/duplicate|constraint/i);
    expect(await db.read((q) => q.all("SELECT k, v FROM kv WHERE k LIKE 'defer-%' ORDER BY k"))).toEqual([{ k: "defer-dup", v: 1n }]);
    // The connection is left with no transaction open: the next one commits.
    await db.transaction((q) => q.runWithNext("INSERT INTO kv (k, v) VALUES ('defer-d', 4)"));
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["defer-d"]))).toEqual({ v: 4n });
  });

  it("fails only the group member whose deferred write fails: the others commit", async () => {
    await db.exclusive((q) => q.run("INSERT INTO kv (k, v) VALUES ('group-dup', 1)"));
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const busy = db.exclusive(() => new Promise<void>((r) => ((release = r), started())));
    await running;
    const first = db.transaction((q) => q.runWithNext("INSERT INTO kv (k, v) VALUES ('group-a', 1)"));
    const failing = db.transaction((q) => q.runWithNext("INSERT INTO kv (k, v) VALUES ('group-dup', 2)"));
    const last = db.transaction(async (q) => (await q.runWithNext("INSERT INTO kv (k, v) VALUES ('group-b', 1)"), q.one("SELECT count(*) AS n FROM kv WHERE k = 'group-a'")));
    release();
    await busy;
    await first;
    await expect(failing).rejects.toThrow(/duplicate|constraint/i);
    expect(await last).toEqual({ n: 1n });
    expect(await db.read((q) => q.all("SELECT k, v FROM kv WHERE k LIKE 'group-%' ORDER BY k"))).toEqual([
      { k: "group-a", v: 1n },
      { k: "group-b", v: 1n },
      { k: "group-dup", v: 1n },
    ]);
  });

  it("opens a group's transaction with the first statement of whichever member runs one", async () => {
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const busy = db.exclusive(() => new Promise<void>((r) => ((release = r), started())));
    await running;
    const empty = db.transaction(async () => "nothing");
    const writes = db.transaction((q) => q.run("INSERT INTO kv (k, v) VALUES ($1, $2)", ["trip-6", 6n]));
    release();
    await busy;
    expect(await empty).toBe("nothing");
    await writes;
    expect(await db.read((q) => q.one("SELECT v FROM kv WHERE k = $1", ["trip-6"]))).toEqual({ v: 6n });
  });
});
