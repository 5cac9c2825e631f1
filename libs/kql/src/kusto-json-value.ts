import type { KustoType } from "@spillway/kusto";
import { datetimeText, quoteIdent, timespanText } from "./sql-fragments.js";

/**
 * SQL rendering a result column as text that kustoJsonValue() turns into the value Kusto's
 * JSON shows: DuckDB does the formatting, so no row passes through JavaScript as a number.
 */
export function renderColumnSql(name: string, type: KustoType): string {
  const ref = quoteIdent(name);
  switch (type) {
    case "datetime":
      return datetimeText(ref);
    case "timespan":
      return timespanText(ref);
    default:
      return `CAST(${ref} AS VARCHAR)`;
  }
}

export type KustoJson = null | boolean | number | string | KustoJson[] | { [key: string]: KustoJson };

/**
 * A rendered value as Kusto writes it in JSON: datetimes ISO with trailing fraction zeros
 * trimmed, timespans [-][d.]hh:mm:ss[.fffffff], dynamic values as JSON, long and decimal as
 * decimal strings (decimals without trailing fraction zeros) (a 64-bit value does not fit a JSON number), NaN and ±Infinity as strings.
 */
export function kustoJsonValue(text: string | null, type: KustoType): KustoJson {
  if (text === null) return null;
  switch (type) {
    case "bool":
      return text === "true";
    case "int":
      return Number(text);
    case "long":
      return text;
    case "decimal":
      // DuckDB renders every digit of its scale (12.500…0); Kusto shows the value (12.5).
      return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
    case "real": {
      const n = Number(text);
      if (Number.isNaN(n)) return text === "inf" || text === "Infinity" ? "Infinity" : text === "-inf" || text === "-Infinity" ? "-Infinity" : "NaN";
      return n;
    }
    case "datetime":
      return text.replace(/\.?0+Z$/, "Z").replace(/\.Z$/, "Z");
    case "dynamic":
      return JSON.parse(text) as KustoJson;
    default:
      return text;
  }
}
