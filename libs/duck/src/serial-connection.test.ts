import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SerialConnection } from "./serial-connection.js";

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

it("answers a one-statement read beside a write transaction, with what was committed before it", async () => {
  let inside!: () => void;
  let finish!: () => void;
  const entered = new Promise<void>((r) => (inside = r));
  const writing = db.transaction(async (q) => {
    await q.run("UPDATE kv SET v = 999 WHERE k = $1", ["k3"]);
    inside();
    await new Promise<void>((r) => (finish = r));
  });
  await entered;
  // The write transaction holds the writer connection: a read behind it would never come back.
  expect(await db.select("SELECT v FROM kv WHERE k = $1", ["k3"])).toEqual([{ v: 30n }]);
  finish();
  await writing;
  expect(await db.select("SELECT v FROM kv WHERE k = $1", ["k3"])).toEqual([{ v: 999n }]);
  await expect(db.select("SELEC 1")).rejects.toThrow(/syntax error/i);
});
