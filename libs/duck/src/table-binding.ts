import { isAbsolute, join } from "node:path";
import { quoteIdent, quoteList } from "./sql-text.js";
import { fromStorageSql, KUSTO_TO_DUCKDB, parseKustoType } from "@spillway/kusto";

/**
 * The SQL that makes `table` visible to one query: a temporary view over exactly the
 * extents given (a fact table's cursor range, or a dimension table whole), with the
 * table's columns and types whether or not it has any extent.
 */
export function bindTableSql(table: { name: string; columns: Array<{ name: string; type: string }>; extentPaths: string[] }, dataDir: string): string {
  const typed = table.columns.map((c) => {
    const kusto = parseKustoType(c.type, `table '${table.name}'`);
    return { name: c.name, kusto, duck: KUSTO_TO_DUCKDB[kusto] };
  });
  let body: string;
  if (table.extentPaths.length === 0) {
    body = `SELECT ${typed.map((c) => `CAST(NULL AS ${c.duck}) AS ${quoteIdent(c.name)}`).join(", ")} WHERE false`;
  } else {
    const files = table.extentPaths.map((p) => (isAbsolute(p) ? p : join(dataDir, p)));
    body = `SELECT ${typed.map((c) => `${fromStorageSql(quoteIdent(c.name), c.kusto)} AS ${quoteIdent(c.name)}`).join(", ")} FROM read_parquet(${quoteList(files)})`;
  }
  return `CREATE OR REPLACE TEMP VIEW ${quoteIdent(table.name)} AS ${body}`;
}
