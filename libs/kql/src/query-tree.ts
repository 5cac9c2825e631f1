import type { KustoType } from "@spillway/kusto";
import type { KqlColumn } from "./kql-schema.js";

/** Character offsets in the query text; errors report them as line and column. */
export interface Span {
  start: number;
  end: number;
}

/**
 * A literal as written. Integers and decimals keep their digits (64-bit values do not fit
 * a JS number); datetimes are ISO text with 7 fractional digits; timespans are 100-ns ticks;
 * dynamic values are JSON text.
 */
export type LiteralValue = null | boolean | number | string;

export type BinaryOperator =
  | "+" | "-" | "*" | "/" | "%"
  | "==" | "!=" | "<" | "<=" | ">" | ">="
  | "=~" | "!~"
  | "and" | "or"
  | "has" | "!has" | "has_cs" | "!has_cs"
  | "contains" | "!contains" | "contains_cs" | "!contains_cs"
  | "startswith" | "!startswith" | "startswith_cs" | "!startswith_cs"
  | "endswith" | "!endswith" | "endswith_cs" | "!endswith_cs"
  | "matches regex";

export type ScalarExpr =
  | { kind: "literal"; type: KustoType; value: LiteralValue; span: Span }
  | { kind: "column"; name: string; type: KustoType; span: Span }
  | { kind: "binary"; op: BinaryOperator; left: ScalarExpr; right: ScalarExpr; type: KustoType; span: Span }
  | { kind: "negate"; operand: ScalarExpr; type: KustoType; span: Span }
  | { kind: "call"; name: string; args: ScalarExpr[]; type: KustoType; span: Span }
  | { kind: "member"; target: ScalarExpr; key: ScalarExpr; type: KustoType; span: Span }
  | { kind: "between"; negated: boolean; value: ScalarExpr; low: ScalarExpr; high: ScalarExpr; type: "bool"; span: Span }
  | { kind: "in"; op: "in" | "!in" | "in~" | "!in~"; value: ScalarExpr; list: ScalarExpr[]; type: "bool"; span: Span }
  | { kind: "inTable"; op: "in" | "!in" | "in~" | "!in~"; value: ScalarExpr; table: TabularExpr; type: "bool"; span: Span }
  | { kind: "typeOf"; of: KustoType; type: KustoType; span: Span }
  | { kind: "star"; type: KustoType; span: Span };

export interface NamedExpr {
  name: string;
  expr: ScalarExpr;
}

export interface SortKey {
  expr: ScalarExpr;
  descending: boolean;
  nullsFirst: boolean;
}

/** One aggregate call of `summarize` and the output columns it makes (arg_max makes several). */
export interface Aggregate {
  fn: string;
  args: ScalarExpr[];
  outputs: KqlColumn[];
  span: Span;
}

export type JoinKind =
  | "innerunique" | "inner" | "leftouter" | "rightouter" | "fullouter"
  | "leftanti" | "rightanti" | "leftsemi" | "rightsemi";

export type ParsePart =
  | { kind: "star" }
  | { kind: "text"; value: string }
  | { kind: "column"; name: string; type: KustoType };

export interface MvExpansion {
  name: string;
  expr: ScalarExpr;
  /** `to typeof(T)`: the expanded values are converted to T. */
  toType?: KustoType;
}

interface Tab<K extends string> {
  kind: K;
  /** The result columns, as the parser typed them. */
  columns: KqlColumn[];
  span: Span;
}

export type TabularExpr =
  | (Tab<"table"> & { name: string })
  | (Tab<"datatable"> & { rows: ScalarExpr[][] })
  | (Tab<"range"> & { from: ScalarExpr; to: ScalarExpr; step: ScalarExpr })
  | (Tab<"print"> & { items: NamedExpr[] })
  | (Tab<"where"> & { input: TabularExpr; predicate: ScalarExpr })
  | (Tab<"project"> & { input: TabularExpr; items: NamedExpr[] })
  | (Tab<"extend"> & { input: TabularExpr; items: NamedExpr[] })
  // project-away, project-rename, project-reorder: every output column is an input column.
  | (Tab<"select"> & { input: TabularExpr; sources: string[] })
  | (Tab<"summarize"> & { input: TabularExpr; by: NamedExpr[]; aggregates: Aggregate[] })
  | (Tab<"join"> & { joinKind: JoinKind; left: TabularExpr; right: TabularExpr; on: Array<{ left: string; right: string }> })
  | (Tab<"lookup"> & { lookupKind: "leftouter" | "inner"; left: TabularExpr; right: TabularExpr; on: Array<{ left: string; right: string }> })
  | (Tab<"union"> & { inputs: TabularExpr[]; sourceColumn?: string; sourceNames: string[] })
  | (Tab<"distinct"> & { input: TabularExpr })
  | (Tab<"take"> & { input: TabularExpr; count: ScalarExpr })
  | (Tab<"top"> & { input: TabularExpr; count: ScalarExpr; by: SortKey })
  | (Tab<"sort"> & { input: TabularExpr; by: SortKey[] })
  | (Tab<"count"> & { input: TabularExpr })
  | (Tab<"mvExpand"> & { input: TabularExpr; expansions: MvExpansion[]; bagsAsArrays: boolean; itemIndex?: string; limit?: ScalarExpr })
  | (Tab<"parse"> & { input: TabularExpr; source: ScalarExpr; mode: "simple" | "regex" | "relaxed"; flags: string; parts: ParsePart[]; keepUnmatched: boolean });
