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
  /** Each join: its kind and the tables read on either side, lower case. */
  joins: JoinShape[];
  /** Each UNION ALL: the tables read in either branch, lower case. */
  unions: Array<[string[], string[]]>;
}

export interface JoinShape {
  /** INNER, LEFT, RIGHT, FULL, SEMI, ANTI … */
  joinType: string;
  /** REGULAR, NATURAL, CROSS, POSITIONAL, ASOF … */
  refType: string;
  left: string[];
  right: string[];
}

const COMBINING_MODIFIERS: Record<string, string> = {
  DISTINCT_MODIFIER: "DISTINCT",
  ORDER_MODIFIER: "ORDER BY",
  LIMIT_MODIFIER: "LIMIT",
  LIMIT_PERCENT_MODIFIER: "LIMIT",
};

/** The shape of one parsed statement (a node of json_serialize_sql's `statements`). */
export function queryShape(statement: unknown): QueryShape {
  const shape: QueryShape = { functions: [], tableReads: [], joins: [], unions: [] };
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
    if (node.sample) combine("a sample");
    for (const m of (node.modifiers as Array<{ type?: string }> | undefined) ?? []) if (m.type && COMBINING_MODIFIERS[m.type]) combine(COMBINING_MODIFIERS[m.type]!);
    if (node.class === "WINDOW") combine("a window function");
    if (node.class === "SUBQUERY") combine("a subquery");
    if (node.class === "FUNCTION" && typeof node.function_name === "string") shape.functions.push(node.function_name.toLowerCase());
    if (node.type === "BASE_TABLE" && typeof node.table_name === "string") {
      shape.tableReads.push(node.table_name.toLowerCase());
      reads.push(node.table_name.toLowerCase());
    }
    // What each side of a join or a set operation reads decides whether it keeps rows apart (isRowWise).
    if (node.type === "JOIN" || node.type === "SET_OPERATION_NODE") {
      const [left, right]: [string[], string[]] = [[], []];
      visit(node.left, left);
      visit(node.right, right);
      if (node.type === "JOIN") shape.joins.push({ joinType: String(node.join_type), refType: String(node.ref_type), left, right });
      else shape.unions.push([left, right]);
      reads.push(...left, ...right);
      for (const [k, v] of Object.entries(node)) if (k !== "left" && k !== "right") visit(v, reads);
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
 * combines rows (no aggregate, window, DISTINCT, ORDER BY, LIMIT, sample, subquery or set
 * operation but UNION ALL), each fact table is read once, every UNION ALL branch reads a
 * fact table (a branch of dimensions alone would repeat in every part), and every join keeps
 * each fact row on its own: at most one side reads fact tables, and that side is one the join
 * preserves row by row (either side of an inner join; the left of LEFT, SEMI, ANTI and ASOF;
 * the right of RIGHT; neither of FULL or POSITIONAL). Dimension tables are read whole by
 * every part. `aggregates`: the names of aggregate functions.
 */
export function isRowWise(shape: QueryShape, factTables: string[], aggregates: ReadonlySet<string>): boolean {
  if (shape.combinesRows) return false;
  if (shape.functions.some((f) => aggregates.has(f))) return false;
  const facts = new Set(factTables.map((t) => t.toLowerCase()));
  const readsFact = (tables: string[]) => tables.some((t) => facts.has(t));
  if (!readsFact(shape.tableReads)) return false;
  for (const fact of facts) if (shape.tableReads.filter((t) => t === fact).length > 1) return false;
  if (!shape.unions.every(([left, right]) => readsFact(left) && readsFact(right))) return false;
  return shape.joins.every((j) => {
    const [left, right] = [readsFact(j.left), readsFact(j.right)];
    if (!left && !right) return true;
    if (left && right) return false;
    if (j.refType === "POSITIONAL") return false;
    if (j.refType === "ASOF") return left && (j.joinType === "INNER" || j.joinType === "LEFT");
    switch (j.joinType) {
      case "INNER":
        return true;
      case "LEFT":
      case "SEMI":
      case "ANTI":
        return left;
      case "RIGHT":
        return right;
      default:
        return false;
    }
  });
}
