import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import xxhash from "xxhash-wasm";
import { datetimeTicks, quoteLiteral } from "./sql-fragments.js";
import { asSignedLongSql, xxhash64Int64Sql, xxhash64TextSql } from "./xxhash64-sql.js";

// A seeded generator, so a failure names inputs that can be run again.
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// One- to four-byte UTF-8 characters, so byte lengths cross every XXH64 boundary unevenly.
const ALPHABET = ["a", "Z", "0", " ", "\t", "'", "~", "é", "ß", "Ж", "中", "語", "€", "😀", "𝄞", "\u0001"];

function randomStrings(count: number): string[] {
  const next = random(20240611);
  const out = ["", "a", "ab", "abc", "abcd", "abcdefg", "abcdefgh", "x".repeat(31), "x".repeat(32), "x".repeat(33), "y".repeat(64), "World", "Hello"];
  while (out.length < count) {
    // Mostly short (each tail path), some past one and several 32-byte stripes.
    const chars = next() < 0.7 ? Math.floor(next() * 40) : Math.floor(next() * 300);
    let s = "";
    for (let i = 0; i < chars; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
    out.push(s);
  }
  return out;
}

describe("xxhash64 in SQL", () => {
  let connection: DuckDBConnection;
  let h64: (s: string) => bigint;
  let h64Bytes: (b: Uint8Array) => bigint;
  beforeAll(async () => {
    connection = await (await DuckDBInstance.create(":memory:", { threads: "1" })).connect();
    const hasher = await xxhash();
    h64 = (s) => hasher.h64(s);
    h64Bytes = (b) => hasher.create64(0n).update(b).digest();
  });
  afterAll(() => connection?.closeSync());

  async function column(sql: string): Promise<string[]> {
    return (await connection.runAndReadAll(sql)).getRows().map((r) => String(r[0]));
  }

  it("matches xxhash-wasm on the UTF-8 bytes of strings of any length", async () => {
    const strings = randomStrings(400);
    // Every byte-length class: empty, under 4, under 8, under 32, and several stripes.
    const lengths = strings.map((s) => Buffer.byteLength(s));
    for (const [lo, hi] of [[0, 0], [1, 3], [4, 7], [8, 31], [32, 63], [64, 1200]] as const) {
      expect(lengths.some((n) => n >= lo && n <= hi), `a string of ${lo}..${hi} bytes`).toBe(true);
    }
    const rows = strings.map((s, i) => `(${i}, ${quoteLiteral(s)})`).join(", ");
    const got = await column(`SELECT ${asSignedLongSql(xxhash64TextSql("s"))} FROM (VALUES ${rows}) AS t(i, s) ORDER BY i`);
    const want = strings.map((s) => BigInt.asIntN(64, h64(s)).toString());
    const wrong = strings.filter((_, i) => got[i] !== want[i]).map((s) => JSON.stringify(s));
    expect(wrong).toEqual([]);
  });

  it("is null for null", async () => {
    expect(await column(`SELECT ${xxhash64TextSql("CAST(NULL AS VARCHAR)")}`)).toEqual(["null"]);
    expect(await column(`SELECT ${xxhash64Int64Sql("CAST(NULL AS BIGINT)")}`)).toEqual(["null"]);
  });

  it("matches xxhash-wasm on the little-endian bytes of 64-bit integers", async () => {
    const next = random(7);
    const values = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 635556672000000000n];
    while (values.length < 100) values.push(BigInt.asIntN(64, (BigInt(Math.floor(next() * 2 ** 32)) << 32n) | BigInt(Math.floor(next() * 2 ** 32))));
    const got = await column(`SELECT ${asSignedLongSql(xxhash64Int64Sql("v"))} FROM (VALUES ${values.map((v, i) => `(${i}, CAST('${v}' AS BIGINT))`).join(", ")}) AS t(i, v) ORDER BY i`);
    const le = (v: bigint) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, v, true);
      return b;
    };
    expect(got).toEqual(values.map((v) => BigInt.asIntN(64, h64Bytes(le(v))).toString()));
  });

  it("reads a datetime's ticks exactly, microsecond and 100-ns timestamps alike", async () => {
    const cases: Array<[string, bigint]> = [
      ["TIMESTAMP '0001-01-01 00:00:00'", 0n],
      ["TIMESTAMP '2015-01-01'", 635556672000000000n],
      ["TIMESTAMP '1969-12-31 23:59:59.123456'", 621355967991234560n],
      ["TIMESTAMP_NS '1969-12-31 23:59:59.1234567'", 621355967991234567n],
      ["TIMESTAMP_NS '2262-04-11 23:47:16.8547758'", 713589688368547758n],
      ["TIMESTAMP '9999-12-31 23:59:59.999999'", 3155378975999999990n],
    ];
    const got = await column(`SELECT t FROM (${cases.map(([ts], i) => `SELECT ${i} AS i, ${datetimeTicks(ts)} AS t`).join(" UNION ALL ")}) ORDER BY i`);
    expect(got).toEqual(cases.map(([, t]) => String(t)));
  });

  it("gives the hash() page's answers", async () => {
    // "hash()" page: hash("World") and hash(datetime("2015-01-01")).
    expect(await column(`SELECT ${asSignedLongSql(xxhash64TextSql("'World'"))}`)).toEqual(["1846988464401551951"]);
    expect(await column(`SELECT ${asSignedLongSql(xxhash64Int64Sql(datetimeTicks("TIMESTAMP '2015-01-01'")))}`)).toEqual(["1380966698541616202"]);
    // A hash with its top bit set reads as a negative long: xxhash64 of no bytes is 0xEF46DB3751D8E999.
    expect(await column(`SELECT ${asSignedLongSql(xxhash64TextSql("''"))}`)).toEqual([String(BigInt.asIntN(64, 0xef46db3751d8e999n))]);
  });
});
