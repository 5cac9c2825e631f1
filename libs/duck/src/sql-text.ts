/** A DuckDB identifier, quoted so any name (with `-`, `.` or keywords) is taken literally. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A DuckDB string literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** A DuckDB list literal of strings, e.g. for read_parquet([...]). */
export function quoteList(items: readonly string[]): string {
  return `[${items.map(quoteLiteral).join(", ")}]`;
}
