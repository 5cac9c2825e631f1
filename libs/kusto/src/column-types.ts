import { invalidArgument } from "@spillway/errors";

/** Kusto column types and the DuckDB type each is stored as (SPEC §1). */
export const KUSTO_TO_DUCKDB = {
  bool: "BOOLEAN",
  int: "INTEGER",
  long: "BIGINT",
  real: "DOUBLE",
  decimal: "DECIMAL(38,18)",
  string: "VARCHAR",
  datetime: "TIMESTAMP",
  timespan: "INTERVAL",
  guid: "UUID",
  dynamic: "JSON",
} as const;

export type KustoType = keyof typeof KUSTO_TO_DUCKDB;

/** Columns Spillway adds to what a query sees (a row's cursor, its file) start so; a table's may not. */
export const RESERVED_COLUMN_PREFIX = "__spillway_";

// Kusto accepts these spellings too (e.g. `.create table T (x: int64)`).
const ALIASES: Record<string, KustoType> = {
  boolean: "bool",
  int32: "int",
  int64: "long",
  double: "real",
  float: "real",
  date: "datetime",
  time: "timespan",
  uuid: "guid",
  uniqueid: "guid",
  object: "dynamic",
};

export function parseKustoType(type: string, where: string): KustoType {
  const t = type.trim().toLowerCase();
  if (t in KUSTO_TO_DUCKDB) return t as KustoType;
  if (t in ALIASES) return ALIASES[t]!;
  throw invalidArgument(
    `${where}: unknown type '${type}'; expected one of ${Object.keys(KUSTO_TO_DUCKDB).join(", ")}`,
  );
}

/** The Kusto type a DuckDB result type reads as, or undefined when none does. */
export function kustoTypeOfDuckDb(duckType: string): KustoType | undefined {
  const t = duckType.toUpperCase();
  if (t === "BOOLEAN") return "bool";
  if (t === "INTEGER" || t === "SMALLINT" || t === "TINYINT" || t === "UTINYINT" || t === "USMALLINT") return "int";
  if (t === "BIGINT" || t === "UINTEGER" || t === "HUGEINT" || t === "UBIGINT") return "long";
  if (t === "DOUBLE" || t === "FLOAT") return "real";
  if (t.startsWith("DECIMAL")) return "decimal";
  if (t === "VARCHAR") return "string";
  if (t.startsWith("TIMESTAMP") || t === "DATE") return "datetime";
  if (t === "INTERVAL") return "timespan";
  if (t === "UUID") return "guid";
  if (t === "JSON") return "dynamic";
  return undefined;
}

// Widening a query column into an external table column loses nothing (Kusto's
// "compatible types"); everything else must match exactly.
const WIDENINGS: Record<KustoType, KustoType[]> = {
  bool: [],
  int: ["long", "real", "decimal"],
  long: ["real", "decimal"],
  real: [],
  decimal: ["real"],
  string: ["dynamic"],
  datetime: [],
  timespan: [],
  guid: ["string"],
  dynamic: ["string"],
};

export function isCompatibleType(from: KustoType, to: KustoType): boolean {
  return from === to || WIDENINGS[from].includes(to);
}

export interface ColumnSpec {
  name: string;
  type: string;
}

/** Validates a column list: valid unique names, known types; returns it normalized. */
export function normalizeColumns(columns: readonly ColumnSpec[], where: string): Array<{ name: string; type: KustoType }> {
  if (columns.length === 0) throw invalidArgument(`${where}: at least one column is required`);
  const seen = new Set<string>();
  return columns.map((c, i) => {
    if (!c.name) throw invalidArgument(`${where}: column ${i + 1} has no name`);
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(c.name)) {
      throw invalidArgument(
        `${where}: invalid column name '${c.name}'; use letters, digits and '_', starting with a letter or '_'`,
      );
    }
    const key = c.name.toLowerCase();
    // Spillway's own columns (a row's cursor, its file) are named so: a table's may not be.
    if (key.startsWith(RESERVED_COLUMN_PREFIX)) throw invalidArgument(`${where}: column name '${c.name}' is reserved: names starting with ${RESERVED_COLUMN_PREFIX} are Spillway's own`);
    if (seen.has(key)) throw invalidArgument(`${where}: column '${c.name}' appears twice`);
    seen.add(key);
    return { name: c.name, type: parseKustoType(c.type, `${where}, column '${c.name}'`) };
  });
}

/**
 * How a Kusto type is kept in extent and spool Parquet files. Timespans are INT64
 * ticks (100 ns), as Kusto itself writes them: Parquet's INTERVAL holds neither
 * negative spans nor sub-millisecond precision.
 */
export function storageDuckDbType(type: KustoType): string {
  return type === "timespan" ? "BIGINT" : KUSTO_TO_DUCKDB[type];
}

/** SQL turning a stored value (see storageDuckDbType) into the DuckDB value queries see. */
export function fromStorageSql(expr: string, type: KustoType): string {
  // DuckDB intervals hold microseconds: the 100-ns digit is dropped for queries.
  return type === "timespan" ? `to_microseconds(CAST(${expr} AS BIGINT) // 10)` : `CAST(${expr} AS ${KUSTO_TO_DUCKDB[type]})`;
}

/** SQL turning a DuckDB value of the type into its stored form. */
export function toStorageSql(expr: string, type: KustoType): string {
  return type === "timespan" ? `(epoch_us(CAST(${expr} AS INTERVAL)) * 10)` : `CAST(${expr} AS ${KUSTO_TO_DUCKDB[type]})`;
}
