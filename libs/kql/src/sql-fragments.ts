// SQL building blocks for Kusto's value semantics in DuckDB. Each function takes SQL of
// one Kusto type (in its DuckDB representation, see KUSTO_TO_DUCKDB) and returns SQL.
import { KUSTO_TO_DUCKDB, type KustoType } from "@spillway/kusto";
export { quoteIdent, quoteLiteral } from "@spillway/duck";

export function duckType(type: KustoType): string {
  return KUSTO_TO_DUCKDB[type];
}

export function cast(sql: string, type: KustoType): string {
  return `CAST(${sql} AS ${duckType(type)})`;
}

export function nullOf(type: KustoType): string {
  return cast("NULL", type);
}

/**
 * Evaluates `value` once and hands its SQL name to `body`: DuckDB has no LET, but a
 * one-element list_transform binds a lambda parameter.
 */
let bindCounter = 0;
export function bindOnce(value: string, body: (name: string) => string): string {
  const name = `__v${bindCounter++ % 1_000_000}`;
  return `(list_transform([${value}], ${name} -> ${body(name)}))[1]`;
}

/** Microseconds of an INTERVAL (Kusto timespans are held as intervals). */
export function micros(interval: string): string {
  return `epoch_us(${interval})`;
}

export function intervalOfMicros(us: string): string {
  return `to_microseconds(CAST(${us} AS BIGINT))`;
}

/**
 * A datetime's 100-ns ticks since 0001-01-01 (.NET DateTime.Ticks), BIGINT. Whole minutes
 * from epoch_us, the rest from nanosecond(): exact for TIMESTAMP and TIMESTAMP_NS alike,
 * before 1970 too (epoch_us of a TIMESTAMP_NS truncates toward zero).
 */
export function datetimeTicks(ts: string): string {
  return bindOnce(ts, (t) => `(epoch_us(date_trunc('minute', ${t})) * 10 + nanosecond(${t}) // 100 + 621355968000000000)`);
}

/** Kusto's text of a datetime: ISO 8601, 7 fractional digits, Z. */
export function datetimeText(ts: string): string {
  return `(strftime(CAST(${ts} AS TIMESTAMP_NS), '%Y-%m-%dT%H:%M:%S.%n')[1:27] || 'Z')`;
}

/** Kusto's text of a timespan: [-][d.]hh:mm:ss[.fffffff]. */
export function timespanText(interval: string): string {
  return bindOnce(micros(interval), (u) => {
    const a = `abs(${u})`;
    const days = `(${a} // 86400000000)`;
    const pad2 = (x: string) => `lpad(CAST(${x} AS VARCHAR), 2, '0')`;
    return `CASE WHEN ${u} IS NULL THEN NULL ELSE ` +
      `(CASE WHEN ${u} < 0 THEN '-' ELSE '' END) || ` +
      `(CASE WHEN ${days} > 0 THEN CAST(${days} AS VARCHAR) || '.' ELSE '' END) || ` +
      `${pad2(`(${a} // 3600000000) % 24`)} || ':' || ${pad2(`(${a} // 60000000) % 60`)} || ':' || ${pad2(`(${a} // 1000000) % 60`)} || ` +
      `(CASE WHEN ${a} % 1000000 = 0 THEN '' ELSE '.' || lpad(CAST(${a} % 1000000 AS VARCHAR), 6, '0') || '0' END) END`;
  });
}

/** Kusto's text of a real: integral values without a fraction, NaN and ±Infinity spelled out. */
export function realText(x: string): string {
  return bindOnce(x, (v) =>
    `CASE WHEN isnan(${v}) THEN 'NaN' WHEN ${v} = 'Infinity'::DOUBLE THEN 'Infinity' WHEN ${v} = '-Infinity'::DOUBLE THEN '-Infinity' ` +
    `WHEN ${v} = trunc(${v}) AND abs(${v}) < 1e15 THEN CAST(CAST(${v} AS BIGINT) AS VARCHAR) ELSE CAST(${v} AS VARCHAR) END`);
}

/** Kusto's tostring(): never null ("" for null), dynamic strings without their quotes. */
export function toStringSql(sql: string, type: KustoType): string {
  return `coalesce(${textOf(sql, type)}, '')`;
}

function textOf(sql: string, type: KustoType): string {
  switch (type) {
    case "string":
      return sql;
    case "real":
      return realText(sql);
    case "datetime":
      return datetimeText(sql);
    case "timespan":
      return timespanText(sql);
    case "decimal":
      return bindOnce(`CAST(${sql} AS VARCHAR)`, (s) => `CASE WHEN contains(${s}, '.') THEN rtrim(rtrim(${s}, '0'), '.') ELSE ${s} END`);
    case "dynamic":
      return bindOnce(sql, (j) => `CASE WHEN json_type(${j}) = 'VARCHAR' THEN json_extract_string(${j}, '$') WHEN json_type(${j}) = 'NULL' THEN NULL ELSE CAST(${j} AS VARCHAR) END`);
    default:
      return `CAST(${sql} AS VARCHAR)`;
  }
}

/** A value as a Kusto dynamic (JSON): datetimes and timespans as Kusto's text. */
export function toDynamicSql(sql: string, type: KustoType): string {
  switch (type) {
    case "dynamic":
      return sql;
    case "datetime":
      return `to_json(${datetimeText(sql)})`;
    case "timespan":
      return `to_json(${timespanText(sql)})`;
    case "guid":
      return `to_json(CAST(${sql} AS VARCHAR))`;
    case "decimal":
      return `to_json(CAST(${sql} AS DOUBLE))`;
    default:
      return `to_json(${sql})`;
  }
}

/** A dynamic value read as a scalar type, null when it is not one (as Kusto's to<type>()). */
export function fromDynamicSql(json: string, type: KustoType): string {
  switch (type) {
    case "dynamic":
      return json;
    case "string":
      return textOf(json, "dynamic");
    case "bool":
      return bindOnce(json, (j) => `CASE json_type(${j}) WHEN 'BOOLEAN' THEN CAST(json_extract_string(${j}, '$') AS BOOLEAN) WHEN 'VARCHAR' THEN TRY_CAST(json_extract_string(${j}, '$') AS BOOLEAN) WHEN 'BIGINT' THEN CAST(json_extract_string(${j}, '$') AS BIGINT) <> 0 WHEN 'UBIGINT' THEN CAST(json_extract_string(${j}, '$') AS UBIGINT) <> 0 END`);
    case "datetime":
      return parseDatetimeSql(`(json_extract_string(${json}, '$'))`);
    case "timespan":
      return parseTimespanSql(`(json_extract_string(${json}, '$'))`);
    case "int":
    case "long":
      return `CAST(trunc(TRY_CAST(json_extract_string(${json}, '$') AS DOUBLE)) AS ${duckType(type)})`;
    default:
      return `TRY_CAST(json_extract_string(${json}, '$') AS ${duckType(type)})`;
  }
}

/** Text to datetime the way Kusto's todatetime() reads common forms; null otherwise. */
export function parseDatetimeSql(text: string): string {
  return bindOnce(`trim(${text})`, (t) =>
    `coalesce(TRY_CAST(regexp_replace(${t}, '(?i)z$', '') AS TIMESTAMP_NS), try_strptime(${t}, '%m/%d/%Y %H:%M:%S'), try_strptime(${t}, '%m-%d-%Y'), try_strptime(${t}, '%m/%d/%Y'), try_strptime(${t}, '%a, %d %b %Y %H:%M:%S GMT'))`);
}

/** Text `[-][d.]hh:mm[:ss[.fffffff]]` to an interval; null otherwise. */
export function parseTimespanSql(text: string): string {
  const re = `'^\\s*(-)?(?:(\\d+)\\.)?(\\d{1,2}):(\\d{1,2})(?::(\\d{1,2})(?:\\.(\\d{1,7}))?)?\\s*$'`;
  return bindOnce(`regexp_extract(${text}, ${re}, ['neg', 'd', 'h', 'm', 's', 'f'])`, (p) =>
    `CASE WHEN ${p}.h = '' THEN NULL ELSE ${intervalOfMicros(
      `(CASE WHEN ${p}.neg = '-' THEN -1 ELSE 1 END) * (coalesce(TRY_CAST(${p}.d AS BIGINT), 0) * 86400000000 + CAST(${p}.h AS BIGINT) * 3600000000 + CAST(${p}.m AS BIGINT) * 60000000 + coalesce(TRY_CAST(${p}.s AS BIGINT), 0) * 1000000 + coalesce(TRY_CAST(rpad(${p}.f, 7, '0') AS BIGINT), 0) // 10)`,
    )} END`);
}

/** A JSON path selecting one key (quoted, so any key works) or one index (negative from the end). */
export function jsonKeyPath(key: string): string {
  return `$."${key.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function jsonIndexPath(index: bigint): string {
  return index < 0n ? `$[#${index}]` : `$[${index}]`;
}
