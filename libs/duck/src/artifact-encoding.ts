import type { DuckDBConnection } from "@duckdb/node-api";
import { invalidArgument } from "@spillway/errors";
import { parseKustoType, type KustoType } from "@spillway/kusto";
import { quoteIdent, quoteLiteral } from "./sql-text.js";
import { runMaterialized } from "./read-result.js";

/**
 * What the encoding of an artifact depends on: an external table's columns, format and
 * format properties (structurally the catalog's ExternalTable). Both the query service, which
 * encodes an export's result in one pass, and the writer, which encodes from a spool, use it.
 */
export interface EncodedTable {
  columns: ReadonlyArray<{ name: string; type: string }>;
  dataFormat: string;
  properties?: { includeHeaders?: string; compressionType?: string };
}

// Kusto renders a timespan as [-][d.]hh:mm:ss[.fffffff]; spools hold it as INT64 ticks.
function timespanText(ticks: string): string {
  const t = `abs(${ticks})`;
  const fraction = `CASE WHEN ${t} % 10000000 = 0 THEN '' ELSE printf('.%07d', ${t} % 10000000) END`;
  return `CASE WHEN ${ticks} IS NULL THEN NULL ELSE
    (CASE WHEN ${ticks} < 0 THEN '-' ELSE '' END) ||
    (CASE WHEN ${t} >= 864000000000 THEN CAST(${t} // 864000000000 AS VARCHAR) || '.' ELSE '' END) ||
    printf('%02d:%02d:%02d', (${t} // 36000000000) % 24, (${t} // 600000000) % 60, (${t} // 10000000) % 60) || ${fraction} END`;
}

/** How one column is written, per format: the expression over the spooled column. */
function columnExpression(col: string, type: KustoType, format: string): string {
  const text = format !== "parquet";
  switch (type) {
    case "datetime":
      // ISO 8601 in UTC with Kusto's seven fractional digits.
      // Parquet: an instant (isAdjustedToUTC), as Kusto's datetimes are UTC.
      return text ? `strftime(${col}, '%Y-%m-%dT%H:%M:%S.%f') || '0Z'` : `CAST(${col} AS TIMESTAMPTZ)`;
    case "timespan":
      // Parquet: the INT64 ticks (100 ns) as spooled, as Kusto writes timespans.
      return text ? timespanText(col) : col;
    case "guid":
      return `CAST(${col} AS VARCHAR)`;
    case "dynamic":
      // JSON lines embed dynamic values as JSON; elsewhere they are JSON text.
      return format === "json" ? col : `CAST(${col} AS VARCHAR)`;
    default:
      return col;
  }
}

/** The file's columns, as written, over the spool aliased `s` (virtual partition columns are left out). */
export function fileColumnsSql(table: EncodedTable): string {
  return table.columns
    .map((c) => `${columnExpression(`s.${quoteIdent(c.name)}`, parseKustoType(c.type, `column '${c.name}'`), table.dataFormat)} AS ${quoteIdent(c.name)}`)
    .join(", ");
}

export interface EncodeOptions {
  rowGroupSize: number;
  /** Bytes per file before compression; 0 for one file. */
  sizeLimit: number;
}

/**
 * COPY options for the table's format. Text is written uncompressed with its header
 * line (if any): gzip, byte-order marks and first-file-only headers are applied
 * afterwards (see text-finishing.ts), so sizeLimit counts bytes before compression.
 */
export function copyOptionsSql(table: EncodedTable, options: EncodeOptions): string {
  const p = table.properties;
  const split = options.sizeLimit > 0 ? `, FILE_SIZE_BYTES ${options.sizeLimit}` : "";
  switch (table.dataFormat) {
    case "csv":
    case "tsv":
      return `FORMAT csv, DELIMITER ${quoteLiteral(table.dataFormat === "tsv" ? "\t" : ",")}, HEADER ${p?.includeHeaders === "all" || p?.includeHeaders === "firstFile"}${split}`;
    case "json":
      return `FORMAT json${split}`;
    case "parquet":
      return `FORMAT parquet, COMPRESSION ${p?.compressionType || "snappy"}, ROW_GROUP_SIZE ${options.rowGroupSize || 100000}${split}`;
    default:
      throw invalidArgument(`unsupported data format '${table.dataFormat}'`);
  }
}

/** The COPY statement that encodes rows of the spool (`source`, aliased `s`) in the table's format. */
export function encodeArtifactSql(table: EncodedTable, source: string, out: string, options: EncodeOptions): string {
  return `COPY (SELECT ${fileColumnsSql(table)} FROM ${source}) TO ${quoteLiteral(out)} (${copyOptionsSql(table, options)}${options.sizeLimit > 0 ? ", RETURN_FILES true" : ""})`;
}

/** Orders the files of one COPY ... FILE_SIZE_BYTES (data_0, data_1, …, data_10) as DuckDB wrote them. */
export function byFileNumber(a: string, b: string): number {
  const n = (s: string) => Number(/(\d+)\.[^./]+$/.exec(s)?.[1] ?? 0);
  return n(a) - n(b);
}

/** An artifact's size when the export sets no sizeLimit: DuckDB still splits what it writes at this. */
export const MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024;

/**
 * Encodes `source` (aliased `s`) into files named under `out`, of about `sizeLimit` bytes each
 * (MAX_ARTIFACT_BYTES when 0): the files in the order DuckDB wrote them, and the rows written.
 */
export async function encodeArtifacts(connection: DuckDBConnection, table: EncodedTable, source: string, out: string, options: EncodeOptions): Promise<{ files: string[]; rows: bigint }> {
  const sql = encodeArtifactSql(table, source, out, { ...options, sizeLimit: options.sizeLimit || MAX_ARTIFACT_BYTES });
  const row = (await runMaterialized(connection, sql)).getRowObjects()[0]!;
  return { files: (row.Files as { items: unknown[] }).items.map(String).sort(byFileNumber), rows: BigInt(String(row.Count)) };
}
