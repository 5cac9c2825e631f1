import type { KustoType } from "@spillway/kusto";
import type { CallContext } from "./scalar-sql.js";
import { unsupported } from "./scalar-sql.js";
import {
  bindOnce, cast, datetimeTicks, fromDynamicSql, intervalOfMicros, micros, parseDatetimeSql, parseTimespanSql, quoteLiteral, toDynamicSql, toStringSql,
} from "./sql-fragments.js";
import { asSignedLongSql, xxhash64Int64Sql, xxhash64TextSql } from "./xxhash64-sql.js";

type Translate = (c: CallContext) => string;

const result = (c: CallContext, sql: string) => cast(sql, c.call.type);
const argType = (c: CallContext, i: number): KustoType => c.args[i]?.type ?? unsupported(c.call, `${c.call.name}() needs argument ${i + 1}`);

function constantString(c: CallContext, i: number): string {
  const v = c.constant(i);
  if (typeof v !== "string") return unsupported(c.args[i] ?? c.call, `argument ${i + 1} of ${c.call.name}() must be a constant`);
  return v;
}

function constantInteger(c: CallContext, i: number): number {
  const v = c.constant(i);
  if (v === undefined || v === null || Number.isNaN(Number(v))) return unsupported(c.args[i] ?? c.call, `argument ${i + 1} of ${c.call.name}() must be a constant number`);
  return Number(v);
}

// --- conversions -----------------------------------------------------------------------

function toInteger(type: "int" | "long"): Translate {
  return (c) => {
    const from = argType(c, 0);
    const x = c.arg(0);
    switch (from) {
      case "string":
        return bindOnce(`trim(${x})`, (s) => `CASE WHEN regexp_full_match(${s}, '[+-]?\\d+') THEN TRY_CAST(${s} AS ${type === "int" ? "INTEGER" : "BIGINT"}) ELSE ${cast(`trunc(TRY_CAST(${s} AS DOUBLE))`, type)} END`);
      case "real":
      case "decimal":
        return `TRY_CAST(trunc(${x}) AS ${type === "int" ? "INTEGER" : "BIGINT"})`;
      case "bool":
        return cast(`CASE WHEN ${x} THEN 1 WHEN NOT ${x} THEN 0 END`, type);
      case "dynamic":
        return fromDynamicSql(x, type);
      case "int":
      case "long":
        return cast(x, type);
      case "timespan":
        return cast(`(${micros(x)} * 10)`, type);
      case "datetime":
        return cast(`((epoch_us(${x}) + 62135596800000000) * 10)`, type);
      default:
        return unsupported(c.call, `${c.call.name}() of a ${from} is not supported`);
    }
  };
}

function toReal(): Translate {
  return (c) => {
    const from = argType(c, 0);
    if (from === "dynamic") return fromDynamicSql(c.arg(0), "real");
    if (from === "string") return `TRY_CAST(trim(${c.arg(0)}) AS DOUBLE)`;
    if (from === "bool") return `CAST(CAST(${c.arg(0)} AS INTEGER) AS DOUBLE)`;
    if (from === "timespan" || from === "datetime" || from === "guid") return unsupported(c.call, `${c.call.name}() of a ${from} is not supported`);
    return `CAST(${c.arg(0)} AS DOUBLE)`;
  };
}

function toDynamic(): Translate {
  return (c) => {
    const from = argType(c, 0);
    // Text that is not JSON becomes a dynamic string. DuckDB may evaluate both CASE
    // branches, so the cast must not fail on the branch not taken.
    if (from === "string") return bindOnce(c.arg(0), (s) => `coalesce(CASE WHEN json_valid(${s}) THEN TRY_CAST(${s} AS JSON) END, to_json(${s}))`);
    return toDynamicSql(c.arg(0), from);
  };
}

// --- datetimes -------------------------------------------------------------------------

const startOf: Record<string, (ts: string, offset: string) => string> = {
  day: (ts, o) => `(date_trunc('day', ${ts}) + to_days(CAST(${o} AS INTEGER)))`,
  week: (ts, o) => `(date_trunc('day', ${ts}) - to_days(CAST(dayofweek(${ts}) AS INTEGER)) + to_days(CAST(7 * ${o} AS INTEGER)))`,
  month: (ts, o) => `(date_trunc('month', ${ts}) + to_months(CAST(${o} AS INTEGER)))`,
  year: (ts, o) => `(date_trunc('year', ${ts}) + to_years(CAST(${o} AS INTEGER)))`,
};

function startOfPeriod(period: string): Translate {
  return (c) => `CAST(${startOf[period]!(`CAST(${c.arg(0)} AS TIMESTAMP)`, c.args[1] ? c.arg(1, "long") : "0")} AS TIMESTAMP)`;
}

// The last 100-ns tick of the period: TIMESTAMP holds microseconds, so this is TIMESTAMP_NS.
function endOfPeriod(period: string): Translate {
  return (c) => {
    const next = startOf[period]!(`CAST(${c.arg(0)} AS TIMESTAMP)`, `(${c.args[1] ? c.arg(1, "long") : "0"} + 1)`);
    return `make_timestamp_ns(epoch_ns(CAST(${next} AS TIMESTAMP_NS)) - 100)`;
  };
}

const PART_ALIASES: Record<string, string> = {
  year: "year", quarter: "quarter", month: "month", week_of_year: "week", weekofyear: "week", week: "week",
  day: "day", dayofyear: "dayofyear", hour: "hour", minute: "minute", second: "second",
  millisecond: "millisecond", microsecond: "microsecond", nanosecond: "nanosecond",
};

function datetimePart(c: CallContext): string {
  // Kusto's engine answers long; Kusto.Language 12.4.1 types the call int. A result column
  // typed from the parser would then differ from Kusto's answer.
  if (c.call.type !== "long") return unsupported(c.call, `datetime_part() is not supported: the parser types it ${c.call.type} where Kusto returns long; use getyear(), monthofyear(), hourofday(), ...`);
  const part = PART_ALIASES[constantString(c, 0).toLowerCase()] ?? unsupported(c.args[0]!, `datetime_part '${String(c.constant(0))}' is not supported`);
  const ts = c.arg(1, "datetime");
  switch (part) {
    case "millisecond":
      return `((microsecond(${ts}) // 1000) % 1000)`;
    case "microsecond":
      return `(microsecond(${ts}) % 1000000)`;
    case "nanosecond":
      return `(nanosecond(CAST(${ts} AS TIMESTAMP_NS)) % 1000000000)`;
    default:
      return `CAST(date_part('${part}', ${ts}) AS BIGINT)`;
  }
}

const ADD_UNITS: Record<string, (n: string) => string> = {
  year: (n) => `to_years(CAST(${n} AS INTEGER))`,
  quarter: (n) => `to_months(CAST(3 * ${n} AS INTEGER))`,
  month: (n) => `to_months(CAST(${n} AS INTEGER))`,
  week: (n) => `to_days(CAST(7 * ${n} AS INTEGER))`,
  day: (n) => `to_days(CAST(${n} AS INTEGER))`,
  hour: (n) => `to_hours(CAST(${n} AS BIGINT))`,
  minute: (n) => `to_minutes(CAST(${n} AS BIGINT))`,
  second: (n) => `to_seconds(CAST(${n} AS BIGINT))`,
  millisecond: (n) => `to_milliseconds(CAST(${n} AS BIGINT))`,
  microsecond: (n) => `to_microseconds(CAST(${n} AS BIGINT))`,
};

function datetimeAdd(c: CallContext): string {
  const part = constantString(c, 0).toLowerCase();
  const unit = ADD_UNITS[part] ?? unsupported(c.args[0]!, `datetime_add '${part}' is not supported`);
  return addToDatetime(c.arg(2, "datetime"), unit(c.arg(1, "long")));
}

/**
 * datetime + interval keeping 100-ns digits: DuckDB adds intervals at microsecond
 * precision, so the sub-microsecond part is added back.
 */
export function addToDatetime(ts: string, interval: string): string {
  return bindOnce(`CAST(${ts} AS TIMESTAMP_NS)`, (t) => `make_timestamp_ns(epoch_ns(CAST(CAST(${t} AS TIMESTAMP) + ${interval} AS TIMESTAMP_NS)) + (epoch_ns(${t}) - epoch_ns(CAST(CAST(${t} AS TIMESTAMP) AS TIMESTAMP_NS))))`);
}

function datetimeDiff(c: CallContext): string {
  const part = constantString(c, 0).toLowerCase();
  const a = c.arg(1, "datetime");
  const b = c.arg(2, "datetime");
  // Kusto counts period boundaries crossed between b and a; weeks start on Sunday.
  if (part === "week") {
    if (c.call.type !== "real") return unsupported(c.args[0]!, "datetime_diff('week', ...) is not supported: the parser types it long where Kusto returns real");
    const sunday = (ts: string) => startOf.week!(`CAST(${ts} AS TIMESTAMP)`, "0");
    return result(c, `(datediff('day', ${sunday(b)}, ${sunday(a)}) // 7)`);
  }
  if (part === "nanosecond") return result(c, `(epoch_ns(CAST(${a} AS TIMESTAMP_NS)) - epoch_ns(CAST(${b} AS TIMESTAMP_NS)))`);
  if (!["year", "quarter", "month", "day", "hour", "minute", "second", "millisecond", "microsecond"].includes(part)) {
    return unsupported(c.args[0]!, `datetime_diff '${part}' is not supported`);
  }
  return result(c, `datediff('${part}', CAST(${b} AS TIMESTAMP), CAST(${a} AS TIMESTAMP))`);
}

/** .NET custom date format → pieces of SQL concatenated (strftime cannot cut fractions). */
function formatDatetime(c: CallContext): string {
  const format = constantString(c, 1);
  const ts = `CAST(${c.arg(0, "datetime")} AS TIMESTAMP_NS)`;
  const pieces: string[] = [];
  const tokens = format.match(/(yyyy|yy|MM|M|dd|d|HH|H|hh|h|mm|m|ss|s|tt|f{1,7}|F{1,7}|\[|\]|[^yMdHhmsftF[\]]+|.)/g) ?? [];
  const strftime: Record<string, string> = {
    yyyy: "%Y", yy: "%y", MM: "%m", M: "%-m", dd: "%d", d: "%-d", HH: "%H", H: "%-H", hh: "%I", h: "%-I", mm: "%M", m: "%-M", ss: "%S", s: "%-S", tt: "%p",
  };
  for (const t of tokens) {
    if (strftime[t]) pieces.push(`strftime(${ts}, '${strftime[t]}')`);
    else if (/^f+$/.test(t)) pieces.push(`strftime(${ts}, '%n')[1:${t.length}]`);
    else if (/^F+$/.test(t)) pieces.push(`rtrim(strftime(${ts}, '%n')[1:${t.length}], '0')`);
    else pieces.push(quoteLiteral(t));
  }
  return pieces.length ? `(${pieces.join(" || ")})` : "''";
}

// --- bin ---------------------------------------------------------------------------------

function binSql(valueType: KustoType, value: string, size: string, type: KustoType): string {
  if (valueType === "datetime") return `make_timestamp(CAST(floor(epoch_us(${value}) / ${micros(size)}) * ${micros(size)} AS BIGINT))`;
  if (valueType === "timespan") return intervalOfMicros(`floor(${micros(value)} / ${micros(size)}) * ${micros(size)}`);
  return cast(`floor(CAST(${value} AS DOUBLE) / ${size}) * ${size}`, type);
}

function bin(c: CallContext): string {
  const t = argType(c, 0);
  return binSql(t, c.arg(0), c.arg(1, t === "datetime" ? "timespan" : t === "timespan" ? "timespan" : c.call.type), c.call.type);
}

// --- strings -----------------------------------------------------------------------------

function substringSql(c: CallContext): string {
  const s = c.arg(0, "string");
  const start = `greatest(${c.arg(1, "long")}, 0) + 1`;
  return c.args[2] ? `coalesce(substring(${s}, ${start}, greatest(${c.arg(2, "long")}, 0)), '')` : `coalesce(substring(${s}, ${start}), '')`;
}

function splitSql(c: CallContext): string {
  const parts = `string_split(${c.arg(0, "string")}, ${c.arg(1, "string")})`;
  if (!c.args[2]) return `to_json(${parts})`;
  return bindOnce(`[${parts}]`, (p) => bindOnce(c.arg(2, "long"), (i) => `CASE WHEN ${i} >= 0 AND ${i} < len(${p}[1]) THEN to_json([${p}[1][${i} + 1]]) ELSE CAST('[]' AS JSON) END`));
}

function extractSql(c: CallContext): string {
  const group = constantInteger(c, 1);
  const found = `regexp_extract(${c.arg(2, "string")}, ${c.arg(0, "string")}, ${group})`;
  if (c.call.type === "string") return found;
  return `TRY_CAST(NULLIF(${found}, '') AS ${cast("x", c.call.type).slice("CAST(x AS ".length, -1)})`;
}

// --- null and empty ----------------------------------------------------------------------

function isNullSql(c: CallContext): string {
  const t = argType(c, 0);
  if (t === "string") return "FALSE";
  if (t === "dynamic") return bindOnce(c.arg(0), (j) => `(${j} IS NULL OR json_type(${j}) = 'NULL')`);
  return `(${c.arg(0)} IS NULL)`;
}

function isEmptySql(c: CallContext): string {
  const t = argType(c, 0);
  if (t === "string") return `(${c.arg(0, "string")} = '')`;
  if (t === "dynamic") return bindOnce(c.arg(0), (j) => `(${j} IS NULL OR json_type(${j}) = 'NULL' OR (json_type(${j}) = 'VARCHAR' AND json_extract_string(${j}, '$') = ''))`);
  return `(${c.arg(0)} IS NULL)`;
}

function coalesceSql(c: CallContext): string {
  if (c.call.type === "string") return `coalesce(${c.args.map((_, i) => `NULLIF(${c.arg(i, "string")}, '')`).join(", ")}, '')`;
  return `coalesce(${c.args.map((_, i) => c.arg(i, c.call.type)).join(", ")})`;
}

function caseSql(c: CallContext): string {
  const n = c.args.length;
  if (n < 3 || n % 2 === 0) return unsupported(c.call, "case() takes condition/value pairs and an else value");
  const whens: string[] = [];
  for (let i = 0; i < n - 1; i += 2) whens.push(`WHEN ${c.arg(i, "bool")} THEN ${c.arg(i + 1, c.call.type)}`);
  return `CASE ${whens.join(" ")} ELSE ${c.arg(n - 1, c.call.type)} END`;
}

// --- hashing -------------------------------------------------------------------------------

/**
 * hash(source [, mod]): xxhash64, seed 0 ("hash()" page). The bytes hashed are those its
 * examples pin: a string's UTF-8 bytes (hash("World") == 1846988464401551951) and a
 * datetime's ticks as a little-endian int64 (hash(datetime("2015-01-01")) ==
 * 1380966698541616202). Other types' bytes are not documented, so they are refused.
 */
function hashSql(c: CallContext): string {
  const t = argType(c, 0);
  let h: string;
  // Kusto strings are never null: a null reads as "", as everywhere else.
  if (t === "string") h = xxhash64TextSql(c.arg(0, "string"));
  else if (t === "datetime") h = xxhash64Int64Sql(datetimeTicks(c.arg(0)));
  else return unsupported(c.call, `${c.call.name}() of a ${t} is not supported`);
  if (!c.args[1]) return result(c, asSignedLongSql(h));
  // "The output will be a value between 0 and mod - 1": the unsigned 64-bit hash modulo
  // mod, as the writer's hash(Column, N) partitions do. A mod that is not a positive
  // constant has no documented answer.
  const mod = constantInteger(c, 1);
  if (!Number.isSafeInteger(mod) || mod <= 0) return unsupported(c.args[1], `${c.call.name}() takes a positive constant mod`);
  return result(c, `(${h} % ${mod})`);
}

// --- math ----------------------------------------------------------------------------------

/** Functions defined for positive numbers: Kusto gives -Infinity at 0 and NaN below. */
function positiveOnly(fn: (x: string) => string): Translate {
  return (c) => bindOnce(c.arg(0, "real"), (x) => `CASE WHEN ${x} > 0 THEN ${fn(x)} WHEN ${x} = 0 THEN '-Infinity'::DOUBLE WHEN ${x} < 0 THEN 'NaN'::DOUBLE END`);
}

const real1 = (fn: string): Translate => (c) => `${fn}(${c.arg(0, "real")})`;

export const SCALAR_FUNCTIONS: Record<string, Translate> = {
  // Cursor functions (SPEC §6a): the SQL functions of the same names, which the query
  // service's table binding turns into filters on each row's cursor (libs/duck cursor-functions.ts).
  cursor_after: (c) => `cursor_after(${quoteLiteral(constantString(c, 0))})`,
  cursor_before_or_at: (c) => `cursor_before_or_at(${quoteLiteral(constantString(c, 0))})`,
  cursor_current: () => "cursor_current()",
  ingestion_time: () => "ingestion_time()",
  // strings
  strcat: (c) => `concat(${c.args.map((a, i) => toStringSql(c.arg(i), a.type)).join(", ")})`,
  strcat_delim: (c) => `concat_ws(${c.arg(0, "string")}, ${c.args.slice(1).map((a, i) => toStringSql(c.arg(i + 1), a.type)).join(", ")})`,
  substring: substringSql,
  split: splitSql,
  extract: extractSql,
  tolower: (c) => `lower(${c.arg(0, "string")})`,
  toupper: (c) => `upper(${c.arg(0, "string")})`,
  replace_string: (c) => `replace(${c.arg(0, "string")}, ${c.arg(1, "string")}, ${c.arg(2, "string")})`,
  // Kusto counts Unicode code points (DuckDB's length() counts graphemes).
  strlen: (c) => `len(regexp_extract_all(${c.arg(0, "string")}, '(?s).', 0))`,
  // conversions
  tostring: (c) => toStringSql(c.arg(0), argType(c, 0)),
  toint: toInteger("int"),
  tolong: toInteger("long"),
  todouble: toReal(),
  toreal: toReal(),
  todecimal: (c) => (argType(c, 0) === "dynamic" ? fromDynamicSql(c.arg(0), "decimal") : `TRY_CAST(${c.arg(0)} AS DECIMAL(38,18))`),
  todatetime: (c) => {
    const t = argType(c, 0);
    if (t === "datetime") return c.arg(0);
    if (t === "string") return parseDatetimeSql(c.arg(0));
    if (t === "dynamic") return fromDynamicSql(c.arg(0), "datetime");
    return unsupported(c.call, `todatetime() of a ${t} is not supported`);
  },
  totimespan: (c) => {
    const t = argType(c, 0);
    if (t === "timespan") return c.arg(0);
    if (t === "string") return parseTimespanSql(c.arg(0));
    if (t === "dynamic") return fromDynamicSql(c.arg(0), "timespan");
    return unsupported(c.call, `totimespan() of a ${t} is not supported`);
  },
  toguid: (c) => {
    const t = argType(c, 0);
    if (t === "guid") return c.arg(0);
    if (t === "string") return bindOnce(`replace(trim(${c.arg(0)}), '-', '')`, (h) => `CASE WHEN regexp_full_match(${h}, '[0-9a-fA-F]{32}') THEN CAST(${h} AS UUID) END`);
    if (t === "dynamic") return fromDynamicSql(c.arg(0), "guid");
    return unsupported(c.call, `toguid() of a ${t} is not supported`);
  },
  tobool: (c) => {
    const t = argType(c, 0);
    if (t === "bool") return c.arg(0);
    if (t === "string") return bindOnce(`lower(trim(${c.arg(0)}))`, (s) => `CASE ${s} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE WHEN '1' THEN TRUE WHEN '0' THEN FALSE END`);
    if (t === "int" || t === "long" || t === "real" || t === "decimal") return `(${c.arg(0)} <> 0)`;
    if (t === "dynamic") return fromDynamicSql(c.arg(0), "bool");
    return unsupported(c.call, `tobool() of a ${t} is not supported`);
  },
  todynamic: toDynamic(),
  parse_json: toDynamic(),
  // dynamic
  array_length: (c) => bindOnce(c.arg(0, "dynamic"), (j) => `CASE WHEN json_type(${j}) = 'ARRAY' THEN CAST(json_array_length(${j}) AS BIGINT) END`),
  bag_keys: (c) => bindOnce(c.arg(0, "dynamic"), (j) => `CASE WHEN json_type(${j}) = 'OBJECT' THEN to_json(json_keys(${j})) END`),
  pack_array: (c) => `json_array(${c.args.map((a, i) => toDynamicSql(c.arg(i), a.type)).join(", ")})`,
  bag_pack: (c) => packSql(c),
  pack: (c) => packSql(c),
  // conditionals and nulls
  iif: (c) => `CASE WHEN ${c.arg(0, "bool")} THEN ${c.arg(1, c.call.type)} ELSE ${c.arg(2, c.call.type)} END`,
  iff: (c) => `CASE WHEN ${c.arg(0, "bool")} THEN ${c.arg(1, c.call.type)} ELSE ${c.arg(2, c.call.type)} END`,
  case: caseSql,
  coalesce: coalesceSql,
  isnull: isNullSql,
  isnotnull: (c) => `(NOT ${isNullSql(c)})`,
  isempty: isEmptySql,
  isnotempty: (c) => `(NOT ${isEmptySql(c)})`,
  not: (c) => `(NOT ${c.arg(0, "bool")})`,
  // datetimes
  now: (c) => `(CAST(get_current_timestamp() AS TIMESTAMP)${c.args[0] ? ` + ${c.arg(0, "timespan")}` : ""})`,
  ago: (c) => `(CAST(get_current_timestamp() AS TIMESTAMP) - ${c.arg(0, "timespan")})`,
  bin,
  floor: (c) => (c.args.length === 2 ? bin(c) : result(c, `floor(${c.arg(0)})`)),
  startofday: startOfPeriod("day"),
  startofweek: startOfPeriod("week"),
  startofmonth: startOfPeriod("month"),
  startofyear: startOfPeriod("year"),
  endofday: endOfPeriod("day"),
  endofweek: endOfPeriod("week"),
  endofmonth: endOfPeriod("month"),
  endofyear: endOfPeriod("year"),
  datetime_part: datetimePart,
  datepart: datetimePart,
  datetime_add: datetimeAdd,
  datetime_diff: datetimeDiff,
  format_datetime: formatDatetime,
  hash: hashSql,
  // The "hash_xxhash64()" page describes the same xxhash64 of the same bytes.
  hash_xxhash64: hashSql,
  // math
  abs: (c) => result(c, `abs(${c.arg(0)})`),
  round: (c) => result(c, `round(${c.arg(0)}${c.args[1] ? `, ${c.arg(1, "int")}` : ""})`),
  log: positiveOnly((x) => `ln(${x})`),
  log10: positiveOnly((x) => `log10(${x})`),
  log2: positiveOnly((x) => `log2(${x})`),
  pow: (c) => `pow(${c.arg(0, "real")}, ${c.arg(1, "real")})`,
  sqrt: (c) => bindOnce(c.arg(0, "real"), (x) => `CASE WHEN ${x} < 0 THEN 'NaN'::DOUBLE ELSE sqrt(${x}) END`),
  exp: real1("exp"),
};

function packSql(c: CallContext): string {
  if (c.args.length % 2 !== 0) return unsupported(c.call, `${c.call.name}() takes key/value pairs`);
  const pairs: string[] = [];
  for (let i = 0; i < c.args.length; i += 2) pairs.push(`${c.arg(i, "string")}, ${toDynamicSql(c.arg(i + 1), argType(c, i + 1))}`);
  return `json_object(${pairs.join(", ")})`;
}
