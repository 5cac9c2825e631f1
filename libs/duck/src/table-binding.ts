import type { DuckDBConnection } from "@duckdb/node-api";
import { invalidArgument } from "@spillway/errors";
import { fromStorageSql, KUSTO_TO_DUCKDB, parseKustoType } from "@spillway/kusto";
import type { QueryShape } from "./query-shape.js";
import { CURSOR_COLUMN, cursorCalls, FILE_COLUMN, readsRowCursors, rewriteCursorFunctions } from "./cursor-functions.js";
import { checkQuery } from "./sql-guard.js";
import { quoteIdent, quoteList, quoteLiteral } from "./sql-text.js";
import { runMaterialized } from "./read-result.js";

/**
 * The SQL that makes `table` visible to one query: a temporary view over exactly the
 * extents given (a fact table's cursor range, or a dimension table whole), with the
 * table's columns and types whether or not it has any extent.
 */
export function bindTableSql(table: BindableTable, withCursor = false): string {
  return `CREATE OR REPLACE TEMP VIEW ${quoteIdent(table.name)} AS ${boundTableSelect(table, withCursor)}`;
}

/**
 * The tables as common table expressions, to put before a SELECT that reads the query as a
 * subquery (its names resolve to them, as to views): a binding that runs no statement and
 * leaves nothing on the connection. Not materialized, so filters reach the files as through a view.
 */
export function boundTablesWith(tables: BindableTable[], withCursor = false): string {
  return tables.length ? `WITH ${tables.map((t) => `${quoteIdent(t.name)} AS NOT MATERIALIZED (${boundTableSelect(t, withCursor)})`).join(", ")} ` : "";
}

/** What a bound table reads: exactly the extents given, with the table's columns and types. */
function boundTableSelect(table: BindableTable, withCursor: boolean): string {
  const typed = table.columns.map((c) => {
    const kusto = parseKustoType(c.type, `table '${table.name}'`);
    return { name: c.name, kusto, duck: KUSTO_TO_DUCKDB[kusto] };
  });
  // Each row's cursor is its file's: an expression of the file name alone, so a filter on it skips files.
  // A table without the IngestionTime policy has none: NULL, which no cursor filter keeps.
  const cursors = table.cursors;
  const cursorOf = cursors && table.extentFiles.length
    ? `CASE ${FILE_COLUMN} ${table.extentFiles.map((f, i) => `WHEN ${quoteLiteral(f)} THEN ${cursors[i] ?? 0n}`).join(" ")} END::BIGINT`
    : "CAST(NULL AS BIGINT)";
  // The file too: cursor filters keep rows by it, which DuckDB applies to the file list.
  const fileOf = cursors && table.extentFiles.length ? FILE_COLUMN : "CAST(NULL AS VARCHAR)";
  const cursorColumn = withCursor ? [`${cursorOf} AS ${quoteIdent(CURSOR_COLUMN)}`, `${fileOf} AS ${quoteIdent(FILE_COLUMN)}`] : [];
  let body: string;
  if (table.extentFiles.length === 0) {
    body = `SELECT ${[...typed.map((c) => `CAST(NULL AS ${c.duck}) AS ${quoteIdent(c.name)}`), ...cursorColumn].join(", ")} WHERE false`;
  } else {
    // The file name under a name of Spillway's own: a table's column may be called `filename`.
    const fileName = withCursor ? `, filename = '${FILE_COLUMN}'` : "";
    body = `SELECT ${[...typed.map((c) => `${fromStorageSql(quoteIdent(c.name), c.kusto)} AS ${quoteIdent(c.name)}`), ...cursorColumn].join(", ")} FROM read_parquet(${quoteList(table.extentFiles)}${fileName})`;
  }
  return body;
}

export interface BindableTable {
  name: string;
  columns: Array<{ name: string; type: string }>;
  /** The local files of the extents to read (the extent store hands them out). */
  extentFiles: string[];
  /**
   * Each file's cursor, in the same order: given for a table with the IngestionTime policy,
   * whose rows cursor functions can then filter; absent for one without it.
   */
  cursors?: bigint[];
}

/** What binding a query needs besides its tables. */
export interface BindOptions {
  /** What cursor_current() is; the current cursor when the query's extents were listed. */
  currentCursor?: bigint;
  /**
   * Bind the tables in a WITH clause returned as `with` (see boundTablesWith) rather than as
   * temporary views of the connection: for callers that select from the query as a subquery.
   */
  inline?: boolean;
}

/** Parse trees of the queries bound lately, by text: an export's query is the same every run. */
const trees = new Map<string, string>();
const MAX_TREES = 256;

/** DuckDB's parse tree of `query` as JSON (json_serialize_sql), which depends on the text alone. */
async function serializedTree(connection: DuckDBConnection, query: string): Promise<string> {
  const known = trees.get(query);
  if (known !== undefined) {
    // Most recently used last, so the oldest goes first.
    trees.delete(query);
    trees.set(query, known);
    return known;
  }
  const reader = await runMaterialized(connection, `SELECT json_serialize_sql(${quoteLiteral(query)}) AS tree`);
  const tree = String(reader.getRowObjects()[0]!.tree);
  if (trees.size >= MAX_TREES) trees.delete(trees.keys().next().value!);
  trees.set(query, tree);
  return tree;
}

/**
 * Checks user SQL (sql-guard) on `connection` and binds each table it names to the given
 * extents: as a view on the connection, or `inline` in the WITH clause returned; refuses a
 * table it was not given. Returns the SQL to run and the tables' names as they were given
 * (SQL matches them case-insensitively).
 */
export async function bindQueryTables(connection: DuckDBConnection, query: string, tables: BindableTable[], options: BindOptions = {}): Promise<{ sql: string; with: string; tables: string[]; shape: QueryShape; cursorColumn: boolean }> {
  const tree = await serializedTree(connection, query);
  const checked = checkQuery(query, tree);
  const known = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
  const unknown = checked.tables.filter((t) => !known.has(t.toLowerCase()));
  if (unknown.length) throw invalidArgument(`query reads unknown table${unknown.length > 1 ? "s" : ""} ${unknown.map((t) => `'${t}'`).join(", ")}`);
  const calls = cursorCalls((JSON.parse(tree) as { statements: unknown[] }).statements[0]);
  const rowCursors = readsRowCursors(calls);
  const named = checked.tables.map((name) => known.get(name.toLowerCase())!);
  if (rowCursors && !named.some((t) => t.cursors)) {
    throw invalidArgument(
      named.length
        ? `cursor_after, cursor_before_or_at and ingestion_time() read a row's ingestion cursor: ${named.map((t) => `'${t.name}'`).join(", ")} ${named.length > 1 ? "have" : "has"} no IngestionTime policy`
        : "cursor_after, cursor_before_or_at and ingestion_time() read a row's ingestion cursor: the query reads no table",
    );
  }
  if (rowCursors) refuseStarsThatSeeCursors((JSON.parse(tree) as { statements: unknown[] }).statements[0]);
  // Every table gets the column (a KQL translation selects it from each table it reads), NULL where the table has no policy.
  if (!options.inline) for (const table of named) await connection.run(bindTableSql(table, rowCursors));
  // Newline before any closing parenthesis added around it: a trailing line comment must not swallow it.
  const files = named.flatMap((t) => (t.cursors ? t.extentFiles.map((file, i) => ({ file, cursor: t.cursors![i] ?? 0n })) : []));
  // Checked with what changes from run to run left out (the current cursor, the files a filter
  // keeps: literals Spillway writes, quoted), so an export's check is the same text every run,
  // parsed once; the text run differs from it only in those literals.
  if (calls.length) await checkRewritten(connection, rewriteCursorFunctions(query, calls, 0n, []), checked.tables);
  const sql = (calls.length ? rewriteCursorFunctions(query, calls, options.currentCursor ?? 0n, files) : query).trim().replace(/;+\s*$/, "");
  return { sql, with: options.inline ? boundTablesWith(named, rowCursors) : "", tables: named.map((t) => t.name), shape: checked.shape, cursorColumn: rowCursors };
}

/**
 * Checks a query whose cursor functions were replaced (rewriteCursorFunctions, which splices
 * text) again, as DuckDB parses it: one SELECT the guard accepts, reading no table but
 * `tables` (what the query read before), with no cursor function left. Should the splice ever
 * read the text otherwise than DuckDB's parser does (a comment or string form it does not
 * know), what it uncovered is refused here rather than run: text hidden from the guard must
 * never run.
 */
export async function checkRewritten(connection: DuckDBConnection, rewritten: string, tables: string[]): Promise<void> {
  const tree = await serializedTree(connection, rewritten);
  const refuse = (why: string) => invalidArgument(`query refused: with its cursor functions replaced, ${why}; write the cursor function calls without comments or unusual quoting inside them`);
  let again;
  try {
    again = checkQuery(rewritten, tree);
  } catch (err) {
    throw refuse(`it is not a query Spillway runs (${(err as Error).message})`);
  }
  const read = new Set(tables.map((t) => t.toLowerCase()));
  const extra = again.tables.filter((t) => !read.has(t.toLowerCase()));
  if (extra.length) throw refuse(`it reads ${extra.map((t) => `'${t}'`).join(", ")}, which it did not before`);
  if (cursorCalls((JSON.parse(tree) as { statements: unknown[] }).statements[0]).length) throw refuse("it still calls a cursor function");
}

/**
 * With cursor functions, every bound table also yields its rows' cursor column, which a `*`
 * carries along: harmless where the caller's columns are picked afterwards, but DISTINCT *,
 * GROUP BY ALL over *, and UNION (not ALL) of * would tell rows apart by their cursor.
 * Those forms are refused rather than answered differently.
 */
function refuseStarsThatSeeCursors(statement: unknown): void {
  const hasStar = (node: Record<string, unknown>) => ((node.select_list as Array<{ class?: string }>) ?? []).some((e) => e.class === "STAR");
  const starBelow = (value: unknown): boolean => {
    if (Array.isArray(value)) return value.some(starBelow);
    if (!value || typeof value !== "object") return false;
    const node = value as Record<string, unknown>;
    if (node.type === "SELECT_NODE" && hasStar(node)) return true;
    return Object.values(node).some(starBelow);
  };
  const refuse = (form: string) => {
    throw invalidArgument(`with cursor functions, ${form} would tell rows apart by their cursor: list the columns instead of *`);
  };
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== "object") return;
    const node = value as Record<string, unknown>;
    if (node.type === "SELECT_NODE" && hasStar(node)) {
      if (((node.modifiers as Array<{ type?: string }>) ?? []).some((m) => m.type === "DISTINCT_MODIFIER")) refuse("SELECT DISTINCT *");
      if (node.aggregate_handling === "FORCE_AGGREGATES") refuse("GROUP BY ALL over *");
    }
    if (node.type === "SET_OPERATION_NODE" && node.setop_all === false && starBelow([node.left, node.right])) refuse(`${String(node.setop_type)} of *`);
    Object.values(node).forEach(visit);
  };
  visit(statement);
}
