import type { DuckDBConnection } from "@duckdb/node-api";
import { invalidArgument } from "@spillway/errors";
import { fromStorageSql, KUSTO_TO_DUCKDB, parseKustoType } from "@spillway/kusto";
import type { QueryShape } from "./query-shape.js";
import { checkQuery } from "./sql-guard.js";
import { quoteIdent, quoteList, quoteLiteral } from "./sql-text.js";

/**
 * The SQL that makes `table` visible to one query: a temporary view over exactly the
 * extents given (a fact table's cursor range, or a dimension table whole), with the
 * table's columns and types whether or not it has any extent.
 */
export function bindTableSql(table: BindableTable): string {
  const typed = table.columns.map((c) => {
    const kusto = parseKustoType(c.type, `table '${table.name}'`);
    return { name: c.name, kusto, duck: KUSTO_TO_DUCKDB[kusto] };
  });
  let body: string;
  if (table.extentFiles.length === 0) {
    body = `SELECT ${typed.map((c) => `CAST(NULL AS ${c.duck}) AS ${quoteIdent(c.name)}`).join(", ")} WHERE false`;
  } else {
    body = `SELECT ${typed.map((c) => `${fromStorageSql(quoteIdent(c.name), c.kusto)} AS ${quoteIdent(c.name)}`).join(", ")} FROM read_parquet(${quoteList(table.extentFiles)})`;
  }
  return `CREATE OR REPLACE TEMP VIEW ${quoteIdent(table.name)} AS ${body}`;
}

export interface BindableTable {
  name: string;
  columns: Array<{ name: string; type: string }>;
  /** The local files of the extents to read (the extent store hands them out). */
  extentFiles: string[];
}

/**
 * Checks user SQL (sql-guard) on `connection` and binds each table it names to a view of
 * the given extents; refuses a table it was not given. Returns the SQL to run and the
 * tables' names as they were given (SQL matches them case-insensitively).
 */
export async function bindQueryTables(connection: DuckDBConnection, query: string, tables: BindableTable[]): Promise<{ sql: string; tables: string[]; shape: QueryShape }> {
  const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteLiteral(query)}) AS tree`);
  const checked = checkQuery(query, String(reader.getRowObjects()[0]!.tree));
  const known = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
  const unknown = checked.tables.filter((t) => !known.has(t.toLowerCase()));
  if (unknown.length) throw invalidArgument(`query reads unknown table${unknown.length > 1 ? "s" : ""} ${unknown.map((t) => `'${t}'`).join(", ")}`);
  for (const name of checked.tables) await connection.run(bindTableSql(known.get(name.toLowerCase())!));
  // Newline before any closing parenthesis added around it: a trailing line comment must not swallow it.
  const sql = query.trim().replace(/;+\s*$/, "");
  return { sql, tables: checked.tables.map((t) => known.get(t.toLowerCase())!.name), shape: checked.shape };
}
