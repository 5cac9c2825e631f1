/**
 * What a query does with its rows, read from DuckDB's parse tree (json_serialize_sql): enough
 * to tell whether every output row comes from one row of a fact table, so that a run's cursor
 * range may be split over nodes and the parts' outputs simply added up (DESIGN "Scale-out").
 */
export interface QueryShape {
  /** Why the query combines rows (an aggregate clause, a window, ordering, a limit …); undefined when nothing does. */
  combinesRows?: string;
  /** Every function called, lower case: aggregates are told apart by name, as the parser does not. */
  functions: string[];
  /** Every table read, lower case, once per place it is read. */
  tableReads: string[];
  /** For each join, the tables read on its sides, lower case. */
  joins: string[][];
}

const COMBINING_MODIFIERS: Record<string, string> = {
  DISTINCT_MODIFIER: "DISTINCT",
  ORDER_MODIFIER: "ORDER BY",
  LIMIT_MODIFIER: "LIMIT",
  LIMIT_PERCENT_MODIFIER: "LIMIT",
};

/** The shape of one parsed statement (a node of json_serialize_sql's `statements`). */
export function queryShape(statement: unknown): QueryShape {
  const shape: QueryShape = { functions: [], tableReads: [], joins: [] };
  const combine = (why: string) => (shape.combinesRows ??= why);
  const visit = (value: unknown, reads: string[]): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v, reads);
      return;
    }
    if (!value || typeof value !== "object") return;
    const node = value as Record<string, unknown>;
    // A CTE may be read in several places, each reading its tables again: not followed.
    if ((node.cte_map as { map?: unknown[] } | undefined)?.map?.length) combine("a WITH clause");
    if (node.type === "SELECT_NODE") {
      if ((node.group_expressions as unknown[] | undefined)?.length || (node.group_sets as unknown[] | undefined)?.length) combine("GROUP BY");
      if (node.having) combine("HAVING");
      if (node.qualify) combine("QUALIFY");
      if (node.aggregate_handling && node.aggregate_handling !== "STANDARD_HANDLING") combine("GROUP BY ALL");
    }
    if (node.type === "SET_OPERATION_NODE" && !(String(node.setop_type).startsWith("UNION") && node.setop_all === true)) combine(`${node.setop_type}${node.setop_all ? " ALL" : ""}`);
    for (const m of (node.modifiers as Array<{ type?: string }> | undefined) ?? []) if (m.type && COMBINING_MODIFIERS[m.type]) combine(COMBINING_MODIFIERS[m.type]!);
    if (node.class === "WINDOW") combine("a window function");
    if (node.class === "SUBQUERY") combine("a subquery");
    if (node.class === "FUNCTION" && typeof node.function_name === "string") shape.functions.push(node.function_name.toLowerCase());
    if (node.type === "BASE_TABLE" && typeof node.table_name === "string") {
      shape.tableReads.push(node.table_name.toLowerCase());
      reads.push(node.table_name.toLowerCase());
    }
    if (node.type === "JOIN") {
      const sides: string[] = [];
      for (const v of Object.values(node)) visit(v, sides);
      shape.joins.push(sides);
      reads.push(...sides);
      return;
    }
    for (const v of Object.values(node)) visit(v, reads);
  };
  visit(statement, []);
  return shape;
}

/**
 * Whether each output row comes from one row of one fact table, so that the query over a
 * range of cursors equals the union of the query over the parts of that range: nothing
 * combines rows (no aggregate, window, DISTINCT, ORDER BY, LIMIT, subquery or set operation
 * but UNION ALL), each fact table is read once, and no join has fact tables on both sides.
 * Dimension tables are read whole by every part. `aggregates`: the names of aggregate functions.
 */
export function isRowWise(shape: QueryShape, factTables: string[], aggregates: ReadonlySet<string>): boolean {
  if (shape.combinesRows) return false;
  if (shape.functions.some((f) => aggregates.has(f))) return false;
  const facts = new Set(factTables.map((t) => t.toLowerCase()));
  for (const fact of facts) if (shape.tableReads.filter((t) => t === fact).length > 1) return false;
  return shape.joins.every((sides) => sides.filter((t) => facts.has(t)).length <= 1);
}
