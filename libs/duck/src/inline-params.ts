import { DuckDBTimestampValue, type DuckDBValue } from "@duckdb/node-api";
import { quoteLiteral } from "./sql-text.js";

/**
 * `sql` with each parameter (`$1`, `$2`, …) written in as a DuckDB literal of the type
 * @duckdb/node-api binds it as, so it can run as part of a script (a script of several
 * statements cannot be prepared). Undefined when a value has no exact literal, a `$n` has no
 * value, or the SQL has text where a `$n` could not be told apart from a parameter: it then
 * runs with them bound.
 */
export function inlineParams(sql: string, params: readonly DuckDBValue[]): string | undefined {
  if (params.length === 0) return sql;
  // Only '…' strings are told apart from parameters below: SQL with comments, quoted names
  // or other string forms runs with its parameters bound instead.
  // Nor SQL with dollar quotes ($$, $tag$) or a name with `$` in it (col$1).
  if (/--|\/\*|"|\$\w*\$|\w\$\d|(?<![\w'])[eE]'/.test(sql)) return undefined;
  const literals = params.map(duckLiteral);
  if (literals.some((l) => l === undefined)) return undefined;
  let unmatched = false;
  // Quoted text in the SQL is skipped: a `$1` there is not a parameter.
  const inlined = sql.replace(/'(?:[^']|'')*'|\$(\d+)/g, (match, n: string | undefined) => {
    if (n === undefined) return match;
    const literal = literals[Number(n) - 1];
    if (literal === undefined) unmatched = true;
    return literal ?? match;
  });
  // A `$n` with no value: bound, DuckDB says so.
  return unmatched ? undefined : inlined;
}

/**
 * A value as a DuckDB literal of the type @duckdb/node-api binds it as: a whole number as
 * INTEGER or BIGINT, other numbers as DOUBLE. A bigint, which it binds as HUGEINT, is written
 * as BIGINT, the stores' type, and one beyond BIGINT runs bound. Undefined when a value has
 * no such literal.
 */
function duckLiteral(v: DuckDBValue): string | undefined {
  if (v === null) return "NULL";
  switch (typeof v) {
    case "string":
      // A NUL cannot be written in a literal.
      return v.includes("\0") ? undefined : quoteLiteral(v);
    case "bigint":
      return v >= -(2n ** 63n) && v < 2n ** 63n ? `CAST(${v} AS BIGINT)` : undefined;
    case "number":
      if (!Number.isFinite(v)) return undefined;
      if (Number.isInteger(v)) return v >= -(2 ** 31) && v < 2 ** 31 ? `CAST(${v} AS INTEGER)` : Number.isSafeInteger(v) ? `CAST(${v} AS BIGINT)` : undefined;
      // As text: a plain decimal would be read as DECIMAL first and rounded twice.
      return `CAST('${v}' AS DOUBLE)`;
    case "boolean":
      return v ? "true" : "false";
    default: {
      if (!(v instanceof DuckDBTimestampValue)) return undefined;
      // Years 1 to 9999, which DuckDB writes as YYYY-MM-DD HH:MM:SS[.ffffff].
      if (v.micros < MIN_TIMESTAMP_MICROS || v.micros >= MAX_TIMESTAMP_MICROS) return undefined;
      return `TIMESTAMP '${v.toString()}'`;
    }
  }
}

/** 0001-01-01 and 10000-01-01 UTC, in microseconds since the epoch (Date.UTC reads years below 100 as 19xx). */
const MIN_TIMESTAMP_MICROS = -62_135_596_800_000_000n;
const MAX_TIMESTAMP_MICROS = 253_402_300_800_000_000n;
