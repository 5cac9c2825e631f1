import { quoteIdent, quoteLiteral } from "@spillway/duck";
import { defaultDatetimePattern, dotnetToStrftime, pathTokens, type PartitionSpec } from "@spillway/kusto";
import type { ExternalTable } from "@spillway/proto";

export const DEFAULT_PARTITION = "__DEFAULT_PARTITION__";

/** The table's partitions as the writer works with them. */
export function partitionSpecs(table: ExternalTable): PartitionSpec[] {
  return table.partitions.map((p) => ({
    name: p.name,
    type: p.type as PartitionSpec["type"],
    function: p.function as PartitionSpec["function"],
    column: p.column,
    modulo: p.modulo,
    binSizeMs: p.binSize ? Number(p.binSize.seconds) * 1000 + Math.round(p.binSize.nanos / 1e6) : 0,
  }));
}

/** The table holding hash(Column, N) for each distinct value of a hash partition's column, per stage. */
export function hashTableName(stageId: string, index: number): string {
  return quoteIdent(`__hash_${stageId}_${index}`);
}

// Kusto's bins count from 0001-01-01, so multi-day bins line up with what Kusto writes.
const ORIGIN_US = "epoch_us(TIMESTAMP '0001-01-01 00:00:00')";

/** The partition's value for a spooled row (SQL over the spool, aliased `s`). */
export function partitionValueSql(p: PartitionSpec, index: number, stageId: string): string {
  const col = `s.${quoteIdent(p.column || p.name)}`;
  switch (p.function) {
    case "":
      return p.type === "datetime" ? `CAST(${col} AS TIMESTAMP)` : `CAST(${col} AS VARCHAR)`;
    case "hash":
      return `${hashTableName(stageId, index)}.h`;
    case "startofyear":
      return `date_trunc('year', ${col})`;
    case "startofmonth":
      return `date_trunc('month', ${col})`;
    case "startofday":
      return `date_trunc('day', ${col})`;
    case "startofweek":
      // Weeks start on Sunday, as Kusto's startofweek (dayofweek: Sunday = 0).
      return `CAST(date_trunc('day', ${col}) - to_days(CAST(dayofweek(${col}) AS INTEGER)) AS TIMESTAMP)`;
    case "bin": {
      const b = BigInt(p.binSizeMs) * 1000n;
      return `make_timestamp(((epoch_us(${col}) - ${ORIGIN_US}) // ${b}) * ${b} + ${ORIGIN_US})`;
    }
  }
}

/** The partition's value as a directory name; null, empty or unsafe values go to the default partition. */
export function segmentSql(p: PartitionSpec, index: number, stageId: string, datetimePattern?: string): string {
  const v = partitionValueSql(p, index, stageId);
  if (p.type === "datetime") {
    const fmt = dotnetToStrftime(datetimePattern ?? defaultDatetimePattern(p));
    return `coalesce(strftime(${v}, ${quoteLiteral(fmt)}), ${quoteLiteral(DEFAULT_PARTITION)})`;
  }
  if (p.type === "long") return `coalesce(CAST(${v} AS VARCHAR), ${quoteLiteral(DEFAULT_PARTITION)})`;
  return `CASE WHEN ${v} IS NULL OR ${v} = '' OR ${v} IN ('.', '..') OR regexp_matches(${v}, '[/\\\\\\x00-\\x1f\\x7f]')
          THEN ${quoteLiteral(DEFAULT_PARTITION)} ELSE ${v} END`;
}

/** The folder of a row's artifact, relative to the connection string's folder. */
export function pathSql(table: ExternalTable, stageId: string): string {
  const specs = partitionSpecs(table);
  const parts = pathTokens(table.pathFormat, specs, `external table '${table.name}'`).map((t) => {
    if (t.kind === "text") return quoteLiteral(t.text);
    const index = specs.findIndex((p) => p.name === t.name);
    return segmentSql(specs[index]!, index, stageId, t.datetimePattern);
  });
  return parts.join(" || ");
}

/** LEFT JOINs that bring in each hash partition's value. */
export function hashJoinsSql(table: ExternalTable, stageId: string): string {
  return partitionSpecs(table)
    .map((p, i) =>
      p.function === "hash" ? ` LEFT JOIN ${hashTableName(stageId, i)} ON ${hashTableName(stageId, i)}.k = CAST(s.${quoteIdent(p.column)} AS VARCHAR)` : "",
    )
    .join("");
}

export const HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__";

/**
 * The Hive-style folder of a row in a partitioned Delta table: `Name=value/...`, values
 * URL-encoded as Delta paths are; the values themselves go to partitionValues.
 */
export function deltaFolderSql(table: ExternalTable, stageId: string): string {
  return partitionSpecs(table)
    .map((p, i) => {
      const v = partitionValueSql(p, i, stageId);
      // Delta's partition value text: timestamps as "yyyy-MM-dd HH:mm:ss[.ffffff]".
      const text = p.type === "datetime" ? `strftime(${v}, '%Y-%m-%d %H:%M:%S.%f')` : `NULLIF(CAST(${v} AS VARCHAR), '')`;
      return `${quoteLiteral(`${p.name}=`)} || coalesce(url_encode(${text}), ${quoteLiteral(HIVE_DEFAULT_PARTITION)})`;
    })
    .join(" || '/' || ");
}

/** The partitionValues of a Delta folder written by deltaFolderSql. */
export function deltaPartitionValues(folder: string): Record<string, string | null> {
  if (!folder) return {};
  return Object.fromEntries(
    folder.split("/").map((segment) => {
      const eq = segment.indexOf("=");
      const value = decodeURIComponent(segment.slice(eq + 1));
      return [segment.slice(0, eq), value === HIVE_DEFAULT_PARTITION ? null : value];
    }),
  );
}
