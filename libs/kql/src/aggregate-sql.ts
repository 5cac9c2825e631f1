import type { Aggregate, ScalarExpr } from "./query-tree.js";
import { unsupported, type ScalarSql } from "./scalar-sql.js";
import { bindOnce, cast, quoteIdent, toDynamicSql } from "./sql-fragments.js";

/**
 * One aggregate of `summarize` in two steps: `sql`, computed per group as one hidden
 * column, and `outputs`, reading the aggregate's result columns from that column (arg_max
 * keeps its whole row in one struct so every column comes from the same row).
 */
export interface AggregatePlan {
  sql: string;
  outputs(hidden: string): string[];
}

const FILTERED: Record<string, string> = {
  countif: "count", sumif: "sum", avgif: "avg", dcountif: "dcount", make_list_if: "make_list", make_set_if: "make_set", take_anyif: "take_any",
};

/** The aggregates planAggregate translates (the filtered forms above included), for refusals to name. */
const SUPPORTED_AGGREGATES = [
  "count", "countif", "sum", "sumif", "avg", "avgif", "min", "max", "dcount", "dcountif", "take_any", "take_anyif", "stdev", "stdevp", "variance", "variancep",
  "make_list", "make_list_if", "make_list_with_nulls", "make_set", "make_set_if", "arg_max", "arg_min", "percentile", "percentiles",
];

export function planAggregate(agg: Aggregate, scalar: ScalarSql, inputColumns: string[]): AggregatePlan {
  const base = FILTERED[agg.fn];
  const fn = base ?? agg.fn;
  // The *if variants take their predicate after the value (countif: as the only argument).
  const predicateIndex = base ? (agg.fn === "countif" ? 0 : 1) : -1;
  const predicate = predicateIndex >= 0 ? agg.args[predicateIndex] ?? unsupported(agg, `${agg.fn}() needs a predicate`) : undefined;
  const filter = predicate ? ` FILTER (WHERE ${scalar.as(predicate, "bool")})` : "";
  const valueArgs = agg.args.filter((_, i) => i !== predicateIndex);
  const value = (i = 0): ScalarExpr => valueArgs[i] ?? unsupported(agg, `${agg.fn}() needs an argument`);
  const only = (sql: string): AggregatePlan => ({ sql, outputs: (h) => [cast(h, agg.outputs[0]!.type)] });

  switch (fn) {
    case "count":
      return only(`count(*)${filter}`);
    case "sum":
      return only(`sum(${scalar.sql(value())})${filter}`);
    case "avg":
      return only(`avg(CAST(${scalar.sql(value())} AS DOUBLE))${filter}`);
    case "min":
    case "max":
      if (value().type === "dynamic") return unsupported(agg, `${fn}() of dynamic values is not supported`);
      return only(`${fn}(${scalar.sql(value())})${filter}`);
    case "dcount":
      return only(`count(DISTINCT ${scalar.sql(value())})${filter}`);
    case "take_any":
      if (valueArgs.length !== 1) return unsupported(agg, "take_any() of several columns is not supported");
      return only(`any_value(${scalar.sql(value())})${filter}`);
    case "stdev":
      return only(`stddev_samp(${scalar.sql(value())})${filter}`);
    case "stdevp":
      return only(`stddev_pop(${scalar.sql(value())})${filter}`);
    case "variance":
      return only(`var_samp(${scalar.sql(value())})${filter}`);
    case "variancep":
      return only(`var_pop(${scalar.sql(value())})${filter}`);
    case "make_list":
    case "make_list_with_nulls":
    case "make_set":
      return makeList(fn, value(), valueArgs[1], filter, scalar, agg);
    case "arg_max":
    case "arg_min":
      return argMaxMin(fn, agg, scalar, inputColumns);
    case "percentile":
    case "percentiles": {
      const x = scalar.sql(value());
      const ps = valueArgs.slice(1).map((p) => scalar.as(p, "real"));
      if (ps.length !== agg.outputs.length) return unsupported(agg, `${fn}() makes one column per percentile`);
      return {
        sql: `[${ps.map((p) => `quantile_disc(${x}, ${p} / 100.0)${filter}`).join(", ")}]`,
        outputs: (h) => agg.outputs.map((o, i) => cast(`${h}[${i + 1}]`, o.type)),
      };
    }
    default:
      // The call heading a summarize column may be a scalar function around an aggregate
      // (toupper(tohex(binary_all_and(x)))): say what is translated, not only what is not.
      return unsupported(
        agg,
        `'${agg.fn}' heading a summarize column is not supported: each column must be one of the aggregates ${SUPPORTED_AGGREGATES.join(", ")}; apply other functions in an extend after the summarize`,
      );
  }
}

function makeList(fn: string, x: ScalarExpr, max: ScalarExpr | undefined, filter: string, scalar: ScalarSql, agg: Aggregate): AggregatePlan {
  const json = toDynamicSql(scalar.sql(x), x.type);
  const keepNulls = fn === "make_list_with_nulls";
  const notNull = x.type === "dynamic" ? `${scalar.sql(x)} IS NOT NULL AND json_type(${scalar.sql(x)}) <> 'NULL'` : `${scalar.sql(x)} IS NOT NULL`;
  const where = keepNulls ? filter : filter ? filter.replace("WHERE ", `WHERE (${notNull}) AND `) : ` FILTER (WHERE ${notNull})`;
  let list: string;
  if (fn === "make_set") {
    // Arrays add their elements to a set; the first occurrence of each value keeps its place.
    const elements = x.type === "dynamic" ? `flatten(list(CASE WHEN json_type(${json}) = 'ARRAY' THEN CAST(${json} AS JSON[]) ELSE [${json}] END)${where})` : `list(${json})${where}`;
    list = bindOnce(elements, (l) => `list_filter(${l}, (e, i) -> list_position(list_transform(${l}, y -> CAST(y AS VARCHAR)), CAST(e AS VARCHAR)) = i)`);
  } else {
    list = `list(${json})${where}`;
  }
  if (max) list = `list_slice(${list}, 1, ${scalar.as(max, "long")})`;
  return { sql: `coalesce(to_json(${list}), CAST('[]' AS JSON))`, outputs: (h) => [cast(h, agg.outputs[0]!.type)] };
}

function argMaxMin(fn: "arg_max" | "arg_min", agg: Aggregate, scalar: ScalarSql, inputColumns: string[]): AggregatePlan {
  const [by, ...rest] = agg.args;
  if (!by) return unsupported(agg, `${fn}() needs an expression`);
  const star = rest.some((r) => r.kind === "star");
  const sources: string[] = [scalar.sql(by)];
  agg.outputs.slice(1).forEach((o, i) => {
    const r = star ? undefined : rest[i];
    // `*` names input columns; one clashing with a `by` column comes out renamed (t → t1).
    const source = inputColumns.includes(o.name) ? o.name : o.name.replace(/\d+$/, "");
    if (!r && !inputColumns.includes(source)) unsupported(agg, `cannot tell which column ${o.name} comes from`);
    sources.push(r ? scalar.sql(r) : quoteIdent(source));
  });
  const row = `struct_pack(${sources.map((s, i) => `f${i} := ${s}`).join(", ")})`;
  // DuckDB skips rows whose `by` is null; Kusto still returns a row for an all-null group.
  const sql = `coalesce(${fn}(${row}, ${scalar.sql(by)}), first(${row}))`;
  return { sql, outputs: (h) => agg.outputs.map((o, i) => cast(`(${h}).f${i}`, o.type)) };
}
