// XXH64 (seed 0) written as DuckDB SQL: Kusto's hash() is xxhash64 ("hash()" page) and
// DuckDB has none. The query runs inside DuckDB over bulk data, so this is one SQL
// expression, not a callback per row.
//
// Values are UHUGEINT kept below 2^64: a product of two of them fits 128 bits, so
// multiplying and masking to 64 bits is exact, where UBIGINT arithmetic would fail on
// overflow. A rotation reads its operand twice, so its operands are kept to a few names
// (lambda parameters, or values bound with bindOnce) and the SQL grows linearly.
import { bindOnce } from "./sql-fragments.js";

const u = (n: bigint) => `${n}::UHUGEINT`;
const MASK = u((1n << 64n) - 1n);
const P1 = u(11400714785074694791n);
const P2 = u(14029467366897019727n);
const P3 = u(1609587929392839161n);
const P4 = u(9650029242287828579n);
const P5 = u(2870177450012600261n);

const mul = (a: string, b: string) => `((${a} * ${b}) & ${MASK})`;
const add = (a: string, b: string) => `((${a} + ${b}) & ${MASK})`;
const xor = (a: string, b: string) => `xor(${a}, ${b})`;
const rotl = (x: string, r: number) => `(((${x} << ${r}) & ${MASK}) | (${x} >> ${64 - r}))`;

/** XXH64's round: one 8-byte lane into an accumulator. */
const round = (acc: string, lane: string) => mul(rotl(add(acc, mul(lane, P2)), 31), P1);

/** Folds a finished stripe accumulator into the hash (XXH64's mergeRound). */
const mergeRound = (h: string, v: string) => add(mul(xor(h, round(u(0n), v)), P1), P4);

/** The last mixing steps (XXH64's avalanche); h is read several times, so it is bound. */
function avalanche(h: string): string {
  return bindOnce(h, (a) => bindOnce(mul(xor(a, `(${a} >> 33)`), P2), (b) => bindOnce(mul(xor(b, `(${b} >> 29)`), P3), (c) => xor(c, `(${c} >> 32)`))));
}

/** One 8-byte lane of the remaining input into the hash. */
const step8 = (h: string, lane: string) => add(mul(rotl(xor(h, round(u(0n), lane)), 27), P1), P4);
const step4 = (h: string, word: string) => add(mul(rotl(xor(h, mul(word, P1)), 23), P2), P3);
const step1 = (h: string, byte: string) => mul(rotl(xor(h, mul(byte, P5)), 11), P1);

/**
 * Little-endian unsigned integer of `width` bytes at 0-based byte `offset` of `hex` (the
 * input's hex digits, two per byte): the byte pairs reversed, read as one hex number.
 */
function readLE(hex: string, offset: string, width: number): string {
  const pairs: string[] = [];
  for (let i = width - 1; i >= 0; i--) pairs.push(`substr(${hex}, 2 * (${offset}) + ${2 * i + 1}, 2)`);
  return `CAST(CAST('0x' || ${pairs.join(" || ")} AS UBIGINT) AS UHUGEINT)`;
}

/** `list_reduce` of `step` over the `count` items `item(i)`, from `initial`. */
function fold(initial: string, count: string, item: (i: string) => string, step: (h: string, x: string) => string): string {
  return `list_reduce(list_transform(range(${count}), __i -> ${item("__i")}), (__h, __x) -> ${step("__h", "__x")}, ${initial})`;
}

/**
 * XXH64, seed 0, of the UTF-8 bytes of VARCHAR `text` (DuckDB strings are UTF-8), as a
 * UHUGEINT below 2^64. Null for null.
 */
export function xxhash64TextSql(text: string): string {
  return bindOnce(`hex(encode(${text}))`, (hex) => {
    const n = `(length(${hex}) // 2)`;
    // Inputs of 32 bytes or more: four accumulators, each over its lane of every stripe.
    const stripes = `(${n} // 32)`;
    const accumulators = ([[P1, P2], [P2], [], [u((1n << 64n) - 11400714785074694791n)]] as string[][]).map((init, lane) =>
      fold(init.length === 2 ? add(init[0]!, init[1]!) : (init[0] ?? u(0n)), stripes, (i) => readLE(hex, `32 * ${i} + ${8 * lane}`, 8), round));
    const long = bindOnce(`{'v1': ${accumulators[0]}, 'v2': ${accumulators[1]}, 'v3': ${accumulators[2]}, 'v4': ${accumulators[3]}}`, (v) => {
      const h = `((${rotl(`${v}.v1`, 1)} + ${rotl(`${v}.v2`, 7)} + ${rotl(`${v}.v3`, 12)} + ${rotl(`${v}.v4`, 18)}) & ${MASK})`;
      return mergeRound(mergeRound(mergeRound(mergeRound(h, `${v}.v1`), `${v}.v2`), `${v}.v3`), `${v}.v4`);
    });
    let h = add(`(CASE WHEN ${n} >= 32 THEN ${long} ELSE ${P5} END)`, `CAST(${n} AS UHUGEINT)`);
    // The rest after the stripes: 8-byte lanes, then one 4-byte word, then single bytes.
    const rest = `(${stripes} * 32)`;
    const lanes = `((${n} - ${rest}) // 8)`;
    h = fold(h, lanes, (i) => readLE(hex, `${rest} + 8 * ${i}`, 8), step8);
    h = fold(h, `(CASE WHEN (${n} - ${rest}) % 8 >= 4 THEN 1 ELSE 0 END)`, () => readLE(hex, `${rest} + 8 * ${lanes}`, 4), step4);
    h = fold(h, `(${n} % 4)`, (i) => readLE(hex, `${n} - ${n} % 4 + ${i}`, 1), step1);
    return avalanche(h);
  });
}

/**
 * XXH64, seed 0, of the 8 little-endian bytes of a 64-bit integer (`value`: any integer
 * SQL in [-2^63, 2^64)), as a UHUGEINT below 2^64. Null for null.
 */
export function xxhash64Int64Sql(value: string): string {
  const lane = `CAST((CAST(${value} AS HUGEINT) + 18446744073709551616) % 18446744073709551616 AS UHUGEINT)`;
  return avalanche(step8(add(P5, u(8n)), lane));
}

/** A UHUGEINT below 2^64 as the long with the same 64 bits (two's complement). */
export function asSignedLongSql(h: string): string {
  return bindOnce(h, (x) => `CAST(CASE WHEN ${x} >= 9223372036854775808 THEN CAST(${x} AS HUGEINT) - 18446744073709551616 ELSE CAST(${x} AS HUGEINT) END AS BIGINT)`);
}
