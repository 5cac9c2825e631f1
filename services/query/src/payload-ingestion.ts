import { invalidArgument } from "@spillway/errors";
import { quoteIdent, quoteLiteral } from "@spillway/duck";
import { KUSTO_TO_DUCKDB, parseKustoType, toStorageSql, type KustoType } from "@spillway/kusto";

export const INGEST_FORMATS = ["csv", "tsv", "json", "multijson", "parquet"] as const;
export type IngestFormat = (typeof INGEST_FORMATS)[number];

export function parseIngestFormat(format: string): IngestFormat {
  const f = format.trim().toLowerCase() as IngestFormat;
  if (!INGEST_FORMATS.includes(f)) {
    throw invalidArgument(`format '${format}' is not supported for ingestion; use one of ${INGEST_FORMATS.join(", ")}`);
  }
  return f;
}

interface Column {
  name: string;
  type: string;
}

/**
 * The SELECT that reads a payload file as the table's rows: CSV/TSV by position (as
 * Kusto maps them), JSON lines and Parquet by column name, every value cast to the
 * column's type so a bad value fails the whole payload.
 */
export function payloadSelectSql(
  format: IngestFormat,
  file: string | string[],
  columns: Column[],
  ignoreFirstRecord: boolean,
  parquetTypes: ReadonlyMap<string, string> = new Map(),
): string {
  const typed = columns.map((c) => ({ name: c.name, kusto: parseKustoType(c.type, `column '${c.name}'`) }));
  switch (format) {
    case "csv":
    case "tsv":
    case "json":
    case "multijson":
      return `SELECT ${typed.map((c) => castText(c.name, c.kusto)).join(", ")} FROM ${payloadSourceSql(format, file, typed, ignoreFirstRecord)}`;
    case "parquet":
      // Qualified with the source alias, so a missing column is reported as missing.
      return `SELECT ${typed.map((c) => `${parquetValue(`p.${quoteIdent(c.name)}`, c.kusto, parquetTypes.get(c.name))} AS ${quoteIdent(c.name)}`).join(", ")} FROM read_parquet(${fileList(file)}) AS p`;
  }
}

// Kusto writes timespans as [-][d.]hh:mm:ss[.fffffff], which DuckDB's INTERVAL cast does not read.
const KUSTO_TIMESPAN = String.raw`^(-)?(?:(\d+)\.)?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$`;

/**
 * A text value as a Kusto type; an empty field is null, as Kusto reads CSV. With
 * `lenient`, a value that does not convert gives null instead of an error (used to
 * find the offending row after a failure).
 */
export function textToKusto(expr: string, type: KustoType, lenient = false): string {
  const cast = lenient ? "TRY_CAST" : "CAST";
  const text = `NULLIF(${expr}, '')`;
  switch (type) {
    case "string":
      return expr;
    case "dynamic":
      return lenient ? `CASE WHEN json_valid(${expr}) THEN ${expr}::JSON END` : `CAST(${expr} AS JSON)`;
    case "datetime":
      // Offsets are honoured, then the instant is kept as UTC (the session time zone is UTC).
      // Text ending in 'Z' is UTC already, and the plain TIMESTAMP cast reads it to the same
      // instant at a fifth of the time-zone-aware cast's cost (ISO 8601 with 'Z' is what
      // Kusto and JavaScript write).
      return `CASE WHEN suffix(${expr}, 'Z') THEN ${cast}(${expr} AS TIMESTAMP) ELSE ${cast}(${cast}(${text} AS TIMESTAMPTZ) AS TIMESTAMP) END`;
    case "timespan": {
      const re = quoteLiteral(KUSTO_TIMESPAN);
      const part = (i: number) => `regexp_extract(${text}, ${re}, ${i})`;
      const micros = `(CASE WHEN ${part(1)} = '-' THEN -1 ELSE 1 END) * (coalesce(TRY_CAST(${part(2)} AS BIGINT), 0) * 86400000000 + CAST(${part(3)} AS BIGINT) * 3600000000 + CAST(${part(4)} AS BIGINT) * 60000000 + CAST(round(CAST(${part(5)} AS DOUBLE) * 1000000) AS BIGINT))`;
      return `CASE WHEN regexp_full_match(${text}, ${re}) THEN to_microseconds(${micros}) ELSE ${cast}(${text} AS INTERVAL) END`;
    }
    default:
      return `${cast}(${text} AS ${KUSTO_TO_DUCKDB[type]})`;
  }
}

/** A text value in the form extents store it (see storageDuckDbType). */
function storedFromText(expr: string, type: KustoType): string {
  const value = textToKusto(expr, type);
  return type === "timespan" ? toStorageSql(value, type) : value;
}

function castText(name: string, type: KustoType): string {
  return `${storedFromText(quoteIdent(name), type)} AS ${quoteIdent(name)}`;
}

/** A Parquet payload value in its stored form, by the type the payload file gives it. */
function parquetValue(expr: string, type: KustoType, sourceType: string | undefined): string {
  const source = (sourceType ?? "").toUpperCase();
  if (source === "VARCHAR" && type !== "string" && type !== "dynamic") return storedFromText(expr, type);
  // Kusto writes timespans to Parquet as INT64 ticks.
  if (type === "timespan" && /^U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?$/.test(source)) return `CAST(${expr} AS BIGINT)`;
  if (type === "datetime" && source.startsWith("TIMESTAMP WITH TIME ZONE")) return `CAST(${expr} AS TIMESTAMP)`;
  return toStorageSql(expr, type);
}

/**
 * After a failed read, finds the first row and column whose value does not convert,
 * reading the payload again as text with row numbers.
 */
export function firstBadValueSql(format: IngestFormat, file: string | string[], columns: Column[], ignoreFirstRecord: boolean): string | undefined {
  if (format === "parquet") return undefined;
  const typed = columns.map((c) => ({ name: c.name, kusto: parseKustoType(c.type, `column '${c.name}'`) }));
  const source = payloadSourceSql(format, file, typed, ignoreFirstRecord);
  const bad = (c: { name: string; kusto: KustoType }) =>
    `(${quoteIdent(c.name)} IS NOT NULL AND ${quoteIdent(c.name)} <> '' AND ${textToKusto(quoteIdent(c.name), c.kusto, true)} IS NULL)`;
  const which = `CASE ${typed.map((c) => `WHEN ${bad(c)} THEN ${quoteLiteral(c.name)}`).join(" ")} END`;
  const firstLine = ignoreFirstRecord ? 2 : 1;
  return `SELECT rn + ${firstLine - 1} AS line, ${which} AS column_name, ${typed.map((c) => `CAST(${quoteIdent(c.name)} AS VARCHAR) AS ${quoteIdent(c.name)}`).join(", ")}
          FROM (SELECT row_number() OVER () AS rn, * FROM ${source}) WHERE ${typed.map(bad).join(" OR ")} ORDER BY rn LIMIT 1`;
}

/** The payload as rows of text (JSON text for dynamic values), one column per table column. */
/** One file, or several read as one payload (each with its own header line, when there is one). */
function fileList(file: string | string[]): string {
  return typeof file === "string" ? quoteLiteral(file) : `[${file.map(quoteLiteral).join(", ")}]`;
}

function payloadSourceSql(format: IngestFormat, file: string | string[], typed: Array<{ name: string; kusto: KustoType }>, ignoreFirstRecord: boolean): string {
  const struct = (typeOf: (k: KustoType) => string) =>
    `{${typed.map((c) => `${quoteLiteral(c.name)}: ${quoteLiteral(typeOf(c.kusto))}`).join(", ")}}`;
  if (format === "csv" || format === "tsv") {
    // Text first, then cast: the reader reports structural errors by line, firstBadValueSql the rest.
    return `read_csv(${fileList(file)}, header = ${ignoreFirstRecord}, auto_detect = false, delim = ${quoteLiteral(format === "tsv" ? "\t" : ",")}, quote = '"', escape = '"', columns = ${struct(() => "VARCHAR")}, strict_mode = true, null_padding = false, parallel = false)`;
  }
  return `read_json(${fileList(file)}, format = ${format === "json" ? "'newline_delimited'" : "'auto'"}, columns = ${struct((k) => (k === "dynamic" ? "JSON" : "VARCHAR"))})`;
}

/** DuckDB's reader and cast errors, retold as the row and column of the payload. */
export function describePayloadError(message: string, format: IngestFormat): string {
  const line = /CSV Error on Line: (\d+)/.exec(message)?.[1] ?? /line (\d+)/i.exec(message)?.[1];
  const columns = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(message);
  if (columns) return `payload refused: line ${line}: expected ${columns[1]} columns, found ${columns[2]}; nothing was ingested`;
  const conversion = /Could not convert string "?'?(.*?)'?"? to '?([A-Z_ 0-9(),]+)'?/.exec(message);
  const column = /column "([^"]+)"/.exec(message)?.[1] ?? /column '([^']+)'/.exec(message)?.[1];
  if (conversion) {
    return `payload refused: ${line ? `line ${line}, ` : ""}${column ? `column '${column}': ` : ""}cannot read '${conversion[1]}' as ${conversion[2]!.trim()}; nothing was ingested`;
  }
  const missing = /does not have a column named "([^"]+)"/.exec(message) ?? /Referenced column "([^"]+)" not found/.exec(message);
  if (missing) return `payload refused: the ${format} payload has no column '${missing[1]}'; nothing was ingested`;
  const firstLine = message.split("\n")[0]!.replace(/^[A-Za-z ]+Error: /, "");
  return `payload refused${line ? ` at line ${line}` : ""}${column ? `, column '${column}'` : ""}: ${firstLine}; nothing was ingested`;
}
