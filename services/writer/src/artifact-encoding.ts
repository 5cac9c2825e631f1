import { quoteIdent, quoteLiteral } from "@spillway/duck";
import { parseKustoType, type KustoType } from "@spillway/kusto";
import type { ExternalTable } from "@spillway/proto";

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
function columnExpression(name: string, type: KustoType, format: string): string {
  const col = quoteIdent(name);
  const text = format !== "parquet";
  switch (type) {
    case "datetime":
      // ISO 8601 in UTC with Kusto's seven fractional digits.
      return text ? `strftime(${col}, '%Y-%m-%dT%H:%M:%S.%f') || '0Z'` : col;
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

/** The COPY statement that encodes the spooled rows as one artifact file of the external table's format. */
export function encodeArtifactSql(table: ExternalTable, spoolFile: string, outFile: string, rowGroupSize: number): string {
  const format = table.dataFormat;
  const select = table.columns
    .map((c) => `${columnExpression(c.name, parseKustoType(c.type, `column '${c.name}'`), format)} AS ${quoteIdent(c.name)}`)
    .join(", ");
  const p = table.properties;
  const gzip = p?.compressed ? "gzip" : "none";
  let options: string;
  switch (format) {
    case "csv":
    case "tsv":
      options = `FORMAT csv, DELIMITER ${quoteLiteral(format === "tsv" ? "\t" : ",")}, HEADER ${p?.includeHeaders === "all"}, COMPRESSION ${gzip}`;
      break;
    case "json":
      options = `FORMAT json, COMPRESSION ${gzip}`;
      break;
    case "parquet":
      options = `FORMAT parquet, COMPRESSION ${p?.compressionType || "snappy"}, ROW_GROUP_SIZE ${rowGroupSize || 100000}`;
      break;
    default:
      throw new Error(`unsupported data format '${format}'`);
  }
  return `COPY (SELECT ${select} FROM read_parquet(${quoteLiteral(spoolFile)})) TO ${quoteLiteral(outFile)} (${options})`;
}

/** The artifact's file name: prefix, the run's stem, the format's extension (and .gz). */
export function artifactFileName(table: ExternalTable, stem: string): string {
  const p = table.properties;
  const ext = p?.fileExtension ? p.fileExtension.replace(/^\./, "") : table.dataFormat;
  return `${p?.namePrefix ?? ""}${stem}.${ext}${p?.compressed && table.dataFormat !== "parquet" ? ".gz" : ""}`;
}
