import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckMetadataDb, inlinedScript } from "./duck-metadata-db.js";
import type { SqlValue } from "./metadata-db.js";

describe("runAll on DuckDB: several writes in one call", () => {
  let dir: string;
  let db: DuckMetadataDb;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "spillway-meta-"));
    db = await DuckMetadataDb.open(join(dir, "m.duckdb"));
    await db.migrate(["CREATE TABLE t (k VARCHAR, n BIGINT, x DOUBLE, b BOOLEAN, ts TIMESTAMP, note VARCHAR)", "CREATE TABLE loose (k VARCHAR, v VARCHAR, n BIGINT, x DOUBLE)"]);
  });

  afterAll(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  // What prepared statements with bound parameters store is what the script must store.
  const rows: SqlValue[][] = [
    ["plain", 1n, 0.5, true, new Date("2026-12-01T19:00:00.123Z"), null],
    ["it's -- not a comment; $1 stays", -(2n ** 62n), -2.5e-7, false, new Date("1970-01-01T00:00:00Z"), "'; DROP TABLE t; --"],
    ["\\backslash\nnewline ünïcode", 2n ** 62n + 7n, 1 / 3, true, new Date("9999-12-31T23:59:59.999Z"), "$2"],
  ];

  it("stores each value as binding it as a parameter does", async () => {
    await db.transaction((q) => q.runAll(rows.map((r) => ["INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)", r.map((v, i) => (i === 0 ? `script ${v}` : v))])));
    // Alone (exclusive): a transaction's first statement is written in too (it goes with its BEGIN).
    for (const r of rows) await db.exclusive((q) => q.run("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)", r.map((v, i) => (i === 0 ? `bound ${v}` : v))));
    for (const r of rows) await db.transaction((q) => q.run("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)", r.map((v, i) => (i === 0 ? `first ${v}` : v))));
    const read = await db.select("SELECT * FROM t ORDER BY k");
    const byKey = new Map(read.map((row) => [String(row.k), row]));
    for (const r of rows) {
      const { k: _s, ...script } = byKey.get(`script ${r[0]}`)!;
      const { k: _b, ...bound } = byKey.get(`bound ${r[0]}`)!;
      const { k: _f, ...first } = byKey.get(`first ${r[0]}`)!;
      expect(script).toEqual(bound);
      expect(first).toEqual(bound);
      expect(script).toEqual({ n: r[1], x: r[2], b: r[3], ts: r[4], note: r[5] });
    }
  });

  it("stores JavaScript numbers as binding them does: whole ones as integers, others exactly", async () => {
    // Whole numbers into a text column show the type they were given ('5', not '5.0'); random
    // doubles catch a literal read as DECIMAL and rounded twice.
    const numbers = [5, -7, -(2 ** 31), 2 ** 31, -(2 ** 40), 0.5, 0.9354636172533819, -2.5e-7, 123456.789, 1.5e-300, 5e-324];
    for (let i = 0; i < 200; i++) numbers.push(Math.random() * 10 ** Math.floor(Math.random() * 12 - 6));
    const script = numbers.map((v, i) => ["INSERT INTO loose VALUES ($1, $2, $3, $4)", [`script ${i}`, v, Number.isInteger(v) ? v : null, v]] as [string, SqlValue[]]);
    await db.transaction((q) => q.runAll(script));
    for (const [i, v] of numbers.entries()) await db.exclusive((q) => q.run("INSERT INTO loose VALUES ($1, $2, $3, $4)", [`bound ${i}`, v, Number.isInteger(v) ? v : null, v]));
    const read = new Map((await db.select("SELECT * FROM loose")).map((r) => [String(r.k), r]));
    for (const [i, v] of numbers.entries()) {
      const { k: _s, ...fromScript } = read.get(`script ${i}`)!;
      const { k: _b, ...bound } = read.get(`bound ${i}`)!;
      expect(fromScript, `number ${v}`).toEqual(bound);
      expect(fromScript.x).toBe(v);
    }
  });

  it("is one script when every value has a literal, and binds one by one when one has none", () => {
    expect(inlinedScript([["UPDATE t SET n = $2 WHERE k = $1 AND note <> '$1'", ["a", 5n]], ["DELETE FROM t WHERE k = $1", ["b"]]])).toBe(
      "UPDATE t SET n = CAST(5 AS BIGINT) WHERE k = 'a' AND note <> '$1';\nDELETE FROM t WHERE k = 'b'",
    );
    expect(inlinedScript([["DELETE FROM t WHERE k = $1", ["nul\0byte"]]])).toBeUndefined();
    expect(inlinedScript([["DELETE FROM t WHERE x = $1", [Number.NaN]]])).toBeUndefined();
    expect(inlinedScript([["DELETE FROM t WHERE ts = $1", [new Date(Date.UTC(10000, 0, 1))]]])).toBeUndefined();
    expect(inlinedScript([["DELETE FROM t WHERE n = $1", [2n ** 63n]]])).toBeUndefined();
    expect(inlinedScript([["DELETE FROM t WHERE n = $1", [-(2n ** 63n)]]])).toBe("DELETE FROM t WHERE n = CAST(-9223372036854775808 AS BIGINT)");
    // $1 must not take the start of $10.
    const ten = Array.from({ length: 10 }, (_, i) => `v${i + 1}`);
    expect(inlinedScript([["SELECT $10, $1", ten]])).toBe("SELECT 'v10', 'v1'");
    // A quoted word ending in e is not an E'…' string.
    expect(inlinedScript([["UPDATE t SET note = 'Failure' WHERE k = $1", ["a"]]])).toBe("UPDATE t SET note = 'Failure' WHERE k = 'a'");
    // Text the substitution cannot tell apart from parameters: bound instead.
    for (const sql of ["DELETE FROM t WHERE k = $1 -- it's", "DELETE FROM t /* it's */ WHERE k = $1", 'DELETE FROM "t" WHERE k = $1', "DELETE FROM t WHERE k = $$it's$$ OR k = $1", "DELETE FROM t WHERE k = E'\\'' OR k = $1"]) {
      expect(inlinedScript([[sql, ["a"]]]), sql).toBeUndefined();
    }
  });

  it("runs the statements that have no literal one by one, with their parameters bound", async () => {
    await db.transaction((q) => q.runAll([["INSERT INTO t (k, x) VALUES ($1, $2)", ["nan", Number.NaN]], ["INSERT INTO t (k, note) VALUES ($1, $2)", ["nul", "a\0b"]]]));
    const [nan] = await db.select("SELECT x FROM t WHERE k = 'nan'");
    expect(Number.isNaN(nan!.x)).toBe(true);
    expect((await db.select("SELECT note FROM t WHERE k = 'nul'"))[0]!.note).toBe("a\0b");
  });

  it("stops at the first statement that fails", async () => {
    // Outside a transaction each statement stands on its own: what ran before the failure stays.
    await expect(db.exclusive((q) => q.runAll([["INSERT INTO t (k) VALUES ($1)", ["before"]], ["INSERT INTO nowhere VALUES (1)"], ["INSERT INTO t (k) VALUES ($1)", ["after"]]]))).rejects.toThrow(/nowhere/);
    expect(await db.select("SELECT k FROM t WHERE k IN ('before', 'after')")).toEqual([{ k: "before" }]);
    // In a transaction, none of it stays.
    await expect(db.transaction((q) => q.runAll([["INSERT INTO t (k) VALUES ($1)", ["rolled back"]], ["INSERT INTO nowhere VALUES (1)"]]))).rejects.toThrow(/nowhere/);
    expect(await db.select("SELECT k FROM t WHERE k = 'rolled back'")).toEqual([]);
  });
});
