import { invalidArgument } from "@spillway/errors";
import { queryShape, type QueryShape } from "./query-shape.js";

/** What the guard learned about a query it accepted. */
export interface CheckedQuery {
  /** Tables the query reads, as written (SQL matches them case-insensitively). */
  tables: string[];
  /** What it does with their rows. */
  shape: QueryShape;
}

// Scalar functions that reveal the server's configuration or environment.
const REFUSED_FUNCTIONS = new Set(["current_setting", "getenv", "enable_profiling"]);

/**
 * Accepts a single read-only SELECT over named tables and nothing else, judged on
 * DuckDB's own parse tree (json_serialize_sql): no statement but SELECT, no table
 * functions (read_csv, read_parquet, query, ...), no file paths or qualified names
 * in FROM. The sandboxed DuckDB instance is the second wall; this is the first,
 * and the one that gives a clear message.
 */
export function checkQuery(query: string, serialized: string): CheckedQuery {
  const parsed = JSON.parse(serialized) as { error: boolean; error_message?: string; error_type?: string; statements?: unknown[] };
  if (parsed.error) {
    if (/Only SELECT statements/i.test(parsed.error_message ?? "")) {
      throw invalidArgument(
        `query refused: only a single read-only SELECT is allowed (no COPY, ATTACH, SET, INSTALL, CREATE, INSERT, PIVOT statements or the like): ${firstWords(query)}`,
      );
    }
    throw invalidArgument(`query does not parse: ${parsed.error_message}`);
  }
  if (!parsed.statements || parsed.statements.length !== 1) {
    throw invalidArgument(`query refused: exactly one SELECT statement is allowed, found ${parsed.statements?.length ?? 0}`);
  }
  const tables: string[] = [];
  walk(parsed.statements[0], new Set(), (node, ctesInScope) => {
    if (node.type === "TABLE_FUNCTION") {
      const fn = (node.function as { function_name?: string } | undefined)?.function_name ?? "a table function";
      throw invalidArgument(`query refused: table function '${fn}' is not allowed; read tables by name only`);
    }
    if (node.type === "BASE_TABLE") {
      const name = String(node.table_name);
      if (node.catalog_name || node.schema_name) {
        throw invalidArgument(`query refused: '${[node.catalog_name, node.schema_name, name].filter(Boolean).join(".")}' is qualified; name tables of this database only`);
      }
      if (node.at_clause) throw invalidArgument(`query refused: AT (time travel) clauses are not supported`);
      if (!ctesInScope.has(name.toLowerCase())) tables.push(name);
    }
    if (node.class === "FUNCTION" && REFUSED_FUNCTIONS.has(String(node.function_name).toLowerCase())) {
      throw invalidArgument(`query refused: function '${node.function_name}' is not allowed`);
    }
  });
  const seen = new Set<string>();
  return {
    shape: queryShape(parsed.statements[0]),
    tables: tables.filter((t) => {
      const key = t.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    }),
  };
}

/**
 * Visits every node; a node's CTE names are in scope for its own subtree only, so a
 * CTE inside a subquery cannot hide a table (or a file path) read outside it.
 */
function walk(value: unknown, ctesInScope: ReadonlySet<string>, visit: (node: Record<string, unknown>, ctes: ReadonlySet<string>) => void): void {
  if (Array.isArray(value)) {
    value.forEach((v) => walk(v, ctesInScope, visit));
  } else if (value && typeof value === "object") {
    const node = value as Record<string, unknown>;
    const defined = (node.cte_map as { map?: Array<{ key: string }> } | undefined)?.map ?? [];
    const scope = defined.length ? new Set([...ctesInScope, ...defined.map((e) => e.key.toLowerCase())]) : ctesInScope;
    visit(node, scope);
    Object.values(node).forEach((v) => walk(v, scope, visit));
  }
}

function firstWords(query: string): string {
  const text = query.trim().replace(/\s+/g, " ");
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
