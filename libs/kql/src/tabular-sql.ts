import { CURSOR_COLUMN, FILE_COLUMN } from "@spillway/duck";
import type { KustoType } from "@spillway/kusto";
import { planAggregate } from "./aggregate-sql.js";
import type { KqlColumn } from "./kql-schema.js";
import type { NamedExpr, ParsePart, ScalarExpr, SortKey, TabularExpr } from "./query-tree.js";
import { escapeRegex, ScalarSql, unsupported } from "./scalar-sql.js";
import { cast, fromDynamicSql, nullOf, parseDatetimeSql, parseTimespanSql, quoteIdent, quoteLiteral } from "./sql-fragments.js";

type Node<K extends TabularExpr["kind"]> = Extract<TabularExpr, { kind: K }>;

const q = quoteIdent;

/** Names of the columns an expression reads. */
function columnsRead(e: ScalarExpr, into = new Set<string>()): Set<string> {
  switch (e.kind) {
    case "column":
      into.add(e.name);
      break;
    case "binary":
      columnsRead(e.left, into);
      columnsRead(e.right, into);
      break;
    case "negate":
      columnsRead(e.operand, into);
      break;
    case "call":
      e.args.forEach((a) => columnsRead(a, into));
      break;
    case "member":
      columnsRead(e.target, into);
      columnsRead(e.key, into);
      break;
    case "between":
      [e.value, e.low, e.high].forEach((a) => columnsRead(a, into));
      break;
    case "in":
      [e.value, ...e.list].forEach((a) => columnsRead(a, into));
      break;
    case "inTable":
      columnsRead(e.value, into);
      break;
    default:
      break;
  }
  return into;
}

/**
 * Translates a typed KQL tree to one DuckDB SELECT. Every operator becomes a SELECT over its
 * input whose columns are exactly the operator's result columns (names, order, types), so
 * operators compose without knowing each other.
 */
export class TabularSql {
  readonly scalar = new ScalarSql((t) => this.sql(t));
  private aliases = 0;

  /**
   * `withCursors`: each table read also yields its rows' cursor column, for the cursor
   * functions of a later operator (where, extend) to read; project, summarize and join drop it,
   * as their columns are their own.
   */
  constructor(private readonly withCursors = false) {}

  sql(t: TabularExpr): string {
    switch (t.kind) {
      case "table":
        return `SELECT ${[...t.columns.map((c) => q(c.name)), ...(this.withCursors ? [q(CURSOR_COLUMN), q(FILE_COLUMN)] : [])].join(", ")} FROM ${q(t.name)}`;
      case "datatable":
        return this.datatable(t);
      case "range": {
        const type = t.columns[0]!.type;
        if (type !== "long" && type !== "int" && type !== "datetime") return unsupported(t, `range of ${type} values is not supported`);
        const step = type === "datetime" ? this.scalar.as(t.step, "timespan") : this.scalar.as(t.step, type);
        return `SELECT unnest(generate_series(${this.scalar.as(t.from, type)}, ${this.scalar.as(t.to, type)}, ${step})) AS ${q(t.columns[0]!.name)}`;
      }
      case "print":
        return `SELECT ${t.items.map((i, n) => `${this.typed(i.expr, t.columns[n]!.type)} AS ${q(i.name)}`).join(", ")}`;
      case "where":
        return `SELECT * FROM ${this.from(t.input)} WHERE ${this.scalar.as(t.predicate, "bool")}`;
      case "project":
        return this.project(t);
      case "extend":
        return this.extend(t);
      case "select":
        return `SELECT ${t.columns.map((c, i) => `${q(t.sources[i]!)} AS ${q(c.name)}`).join(", ")} FROM ${this.from(t.input)}`;
      case "summarize":
        return this.summarize(t);
      case "join":
        return this.join(t);
      case "lookup":
        return this.lookup(t);
      case "union":
        return this.union(t);
      case "distinct":
        return `SELECT DISTINCT ${t.columns.map((c) => q(c.name)).join(", ")} FROM ${this.from(t.input)}`;
      case "take":
        return `SELECT * FROM ${this.from(t.input)} LIMIT ${this.scalar.as(t.count, "long")}`;
      case "top":
        return `SELECT * FROM ${this.from(t.input)} ORDER BY ${this.sortKey(t.by)} LIMIT ${this.scalar.as(t.count, "long")}`;
      case "sort":
        return `SELECT * FROM ${this.from(t.input)} ORDER BY ${t.by.map((k) => this.sortKey(k)).join(", ")}`;
      case "count":
        return `SELECT count(*) AS ${q(t.columns[0]!.name)} FROM ${this.from(t.input)}`;
      case "mvExpand":
        return this.mvExpand(t);
      case "parse":
        return this.parse(t);
    }
  }

  private from(input: TabularExpr): string {
    return `(${this.sql(input)}) AS ${this.alias()}`;
  }

  private alias(): string {
    return `__t${this.aliases++}`;
  }

  /** An expression as SQL of exactly `type` (the parser's type of the column it makes). */
  private typed(e: ScalarExpr, type: KustoType): string {
    const sql = this.scalar.as(e, type);
    return type === "datetime" || type === "dynamic" ? sql : cast(sql, type);
  }

  private sortKey(k: SortKey): string {
    return `${this.scalar.sql(k.expr)} ${k.descending ? "DESC" : "ASC"} NULLS ${k.nullsFirst ? "FIRST" : "LAST"}`;
  }

  private datatable(t: Node<"datatable">): string {
    const names = t.columns.map((c) => q(c.name)).join(", ");
    if (t.rows.length === 0) return `SELECT ${t.columns.map((c) => `${nullOf(c.type)} AS ${q(c.name)}`).join(", ")} LIMIT 0`;
    const rows = t.rows.map((r) => `(${r.map((v, i) => this.typed(v, t.columns[i]!.type)).join(", ")})`);
    return `SELECT * FROM (VALUES ${rows.join(", ")}) AS ${this.alias()}(${names})`;
  }

  /**
   * Assignments evaluated in order, each seeing the ones before it (as `extend a = 1, b = a`
   * does): a new SELECT level starts whenever an expression reads a column assigned in the
   * current level. Returns SQL whose columns are `columns`.
   */
  private assign(input: TabularExpr, items: NamedExpr[], columns: KqlColumn[]): string {
    let sql = this.sql(input);
    let available = input.columns.map((c) => c.name);
    let batch: NamedExpr[] = [];
    const typeOf = (name: string) => columns.find((c) => c.name === name)?.type;
    const flush = () => {
      if (!batch.length) return;
      const replaced = batch.filter((b) => available.includes(b.name));
      const added = batch.filter((b) => !available.includes(b.name));
      const expr = (b: NamedExpr) => `${this.typed(b.expr, typeOf(b.name) ?? b.expr.type)} AS ${q(b.name)}`;
      const star = replaced.length ? `* REPLACE (${replaced.map(expr).join(", ")})` : "*";
      sql = `SELECT ${[star, ...added.map(expr)].join(", ")} FROM (${sql}) AS ${this.alias()}`;
      available = [...available, ...added.map((b) => b.name)];
      batch = [];
    };
    for (const item of items) {
      const reads = columnsRead(item.expr);
      if (batch.some((b) => reads.has(b.name) || b.name === item.name)) flush();
      batch.push(item);
    }
    flush();
    return `SELECT ${columns.map((c) => q(c.name)).join(", ")} FROM (${sql}) AS ${this.alias()}`;
  }

  private project(t: Node<"project">): string {
    const assigned = new Set<string>();
    const sequential = t.items.some((i) => {
      const reads = [...columnsRead(i.expr)].some((r) => assigned.has(r));
      assigned.add(i.name);
      return reads;
    });
    if (sequential) return this.assign(t.input, t.items, t.columns);
    return `SELECT ${t.items.map((i, n) => `${this.typed(i.expr, t.columns[n]!.type)} AS ${q(i.name)}`).join(", ")} FROM ${this.from(t.input)}`;
  }

  private extend(t: Node<"extend">): string {
    return this.assign(t.input, t.items, t.columns);
  }

  private summarize(t: Node<"summarize">): string {
    const keys = t.by.map((b, i) => `${this.typed(b.expr, t.columns[i]!.type)} AS ${q(`__k${i}`)}`);
    const inputNames = t.input.columns.map((c) => c.name);
    const plans = t.aggregates.map((a) => planAggregate(a, this.scalar, inputNames));
    const hidden = plans.map((p, i) => `${p.sql} AS ${q(`__a${i}`)}`);
    const groupBy = keys.length ? ` GROUP BY ${keys.map((_, i) => i + 1).join(", ")}` : "";
    const inner = `SELECT ${[...keys, ...hidden].join(", ")} FROM ${this.from(t.input)}${groupBy}`;
    const outputs = [
      ...t.by.map((_, i) => q(`__k${i}`)),
      ...plans.flatMap((p, i) => p.outputs(q(`__a${i}`))),
    ];
    if (outputs.length !== t.columns.length) return unsupported(t, "cannot match the summarize result columns");
    return `SELECT ${outputs.map((o, i) => `${o} AS ${q(t.columns[i]!.name)}`).join(", ")} FROM (${inner}) AS ${this.alias()}`;
  }

  private joinCondition(l: string, r: string, on: Array<{ left: string; right: string }>): string {
    return on.map((k) => `${l}.${q(k.left)} = ${r}.${q(k.right)}`).join(" AND ");
  }

  /** A column of the side that may be missing: strings read "" there, as Kusto has no null string. */
  private outerColumn(ref: string, type: KustoType, nullable: boolean): string {
    return nullable && type === "string" ? `coalesce(${ref}, '')` : ref;
  }

  private join(t: Node<"join">): string {
    const l = this.alias();
    const r = this.alias();
    const leftKeys = t.on.map((k) => q(k.left)).join(", ");
    let left = `(${this.sql(t.left)})`;
    if (t.joinKind === "innerunique") {
      // innerunique keeps one left row per key: the first, as Kusto's engine does.
      left = `(SELECT * EXCLUDE (__ord) FROM (SELECT *, row_number() OVER () AS __ord FROM ${left} AS ${this.alias()}) QUALIFY row_number() OVER (PARTITION BY ${leftKeys} ORDER BY __ord) = 1)`;
    }
    const right = `(${this.sql(t.right)})`;
    const on = this.joinCondition(l, r, t.on);
    switch (t.joinKind) {
      case "leftsemi":
      case "leftanti":
        return `SELECT ${this.renamed(l, t.left.columns, t.columns, false)} FROM ${left} AS ${l} ${t.joinKind === "leftsemi" ? "SEMI" : "ANTI"} JOIN ${right} AS ${r} ON ${on}`;
      case "rightsemi":
      case "rightanti":
        return `SELECT ${this.renamed(r, t.right.columns, t.columns, false)} FROM ${right} AS ${r} ${t.joinKind === "rightsemi" ? "SEMI" : "ANTI"} JOIN ${left} AS ${l} ON ${on}`;
      default: {
        if (t.columns.length !== t.left.columns.length + t.right.columns.length) return unsupported(t, "cannot match the join result columns");
        const sqlJoin = { innerunique: "INNER", inner: "INNER", leftouter: "LEFT", rightouter: "RIGHT", fullouter: "FULL OUTER" }[t.joinKind];
        const leftNullable = t.joinKind === "rightouter" || t.joinKind === "fullouter";
        const rightNullable = t.joinKind === "leftouter" || t.joinKind === "fullouter";
        const select = [
          this.renamed(l, t.left.columns, t.columns.slice(0, t.left.columns.length), leftNullable),
          this.renamed(r, t.right.columns, t.columns.slice(t.left.columns.length), rightNullable),
        ];
        return `SELECT ${select.join(", ")} FROM ${left} AS ${l} ${sqlJoin} JOIN ${right} AS ${r} ON ${on}`;
      }
    }
  }

  private renamed(alias: string, from: KqlColumn[], to: KqlColumn[], nullable: boolean): string {
    if (from.length !== to.length) return unsupported({ span: { start: 0 } }, "cannot match the join result columns");
    return from.map((c, i) => `${this.outerColumn(`${alias}.${q(c.name)}`, c.type, nullable)} AS ${q(to[i]!.name)}`).join(", ");
  }

  private lookup(t: Node<"lookup">): string {
    const l = this.alias();
    const r = this.alias();
    // The right side's key columns named like the left ones appear once, from the left.
    const dropped = new Set(t.on.filter((k) => k.left === k.right).map((k) => k.right));
    const rightKept = t.right.columns.filter((c) => !dropped.has(c.name));
    if (t.columns.length !== t.left.columns.length + rightKept.length) return unsupported(t, "cannot match the lookup result columns");
    const select = [
      this.renamed(l, t.left.columns, t.columns.slice(0, t.left.columns.length), false),
      this.renamed(r, rightKept, t.columns.slice(t.left.columns.length), t.lookupKind === "leftouter"),
    ].filter((s) => s !== "");
    return `SELECT ${select.join(", ")} FROM (${this.sql(t.left)}) AS ${l} ${t.lookupKind === "inner" ? "INNER" : "LEFT"} JOIN (${this.sql(t.right)}) AS ${r} ON ${this.joinCondition(l, r, t.on)}`;
  }

  private union(t: Node<"union">): string {
    const outputs = t.columns.filter((c) => c.name !== t.sourceColumn);
    // Kusto.Language numbers clashing union columns (x_long1) unlike Kusto's engine.
    const clash = outputs.find((o) => t.inputs.some((i) => i.columns.some((c) => c.type === o.type && new RegExp(`^${escapeRegex(`${c.name}_${c.type}`)}\\d+$`).test(o.name))));
    if (clash) return unsupported(t, `union of columns whose names clash after type suffixes (${clash.name}) is not supported: Kusto's parser and engine name them differently`);
    // A column name that some input has with the output's type is that input's column;
    // other inputs' same-named columns of another type come out as name_type (x_long).
    const exact = new Set(outputs.filter((o) => t.inputs.some((i) => i.columns.some((c) => c.name === o.name && c.type === o.type))).map((o) => o.name));
    const parts = t.inputs.map((input, n) => {
      const select = t.columns.map((o) => {
        if (o.name === t.sourceColumn) return `${quoteLiteral(t.sourceNames[n]!)} AS ${q(o.name)}`;
        let source = input.columns.find((c) => c.name === o.name && c.type === o.type);
        if (!source) {
          const candidates = input.columns.filter((c) => c.type === o.type && !exact.has(o.name) && new RegExp(`^${escapeRegex(`${c.name}_${c.type}`)}\\d*$`).test(o.name));
          if (candidates.length > 1) return unsupported(t, `cannot tell which column of a union input makes ${o.name}`);
          source = candidates[0];
        }
        return `${source ? q(source.name) : nullOf(o.type)} AS ${q(o.name)}`;
      });
      return `SELECT ${select.join(", ")} FROM ${this.from(input)}`;
    });
    return parts.map((p) => `(${p})`).join(" UNION ALL ");
  }

  private mvExpand(t: Node<"mvExpand">): string {
    const lists = t.expansions.map((e, i) => {
      const v = this.scalar.sql(e.expr);
      if (e.expr.type !== "dynamic") return unsupported(e.expr, "mv-expand expands dynamic values");
      const pair = t.bagsAsArrays ? `json_array(k, json_extract(${v}, '$."' || replace(replace(k, '\\', '\\\\'), '"', '\\"') || '"'))` : `json_object(k, json_extract(${v}, '$."' || replace(replace(k, '\\', '\\\\'), '"', '\\"') || '"'))`;
      let list = `CASE json_type(${v}) WHEN 'ARRAY' THEN CAST(${v} AS JSON[]) WHEN 'OBJECT' THEN list_transform(json_keys(${v}), k -> ${pair}) ELSE [${v}] END`;
      if (t.limit) list = `list_slice(${list}, 1, ${this.scalar.as(t.limit, "long")})`;
      return `${list} AS ${q(`__l${i}`)}`;
    });
    const withLists = `SELECT *, ${lists.join(", ")} FROM ${this.from(t.input)}`;
    const expandedNames = new Set(t.expansions.map((e) => e.name));
    const kept = t.input.columns.filter((c) => !expandedNames.has(c.name)).map((c) => q(c.name));
    const unnests = t.expansions.map((_, i) => `unnest(${q(`__l${i}`)}) AS ${q(`__e${i}`)}`);
    const longest = `greatest(${t.expansions.map((_, i) => `len(${q(`__l${i}`)})`).join(", ")})`;
    const index = t.itemIndex ? [`unnest(range(${longest})) AS ${q("__idx")}`] : [];
    const expanded = `SELECT ${[...kept, ...unnests, ...index].join(", ")} FROM (${withLists}) AS ${this.alias()}`;
    const select = t.columns.map((c) => {
      const i = t.expansions.findIndex((e) => e.name === c.name);
      if (i >= 0) {
        const json = `CAST(${q(`__e${i}`)} AS JSON)`;
        return `${c.type === "dynamic" ? json : fromDynamicSql(json, c.type)} AS ${q(c.name)}`;
      }
      if (c.name === t.itemIndex) return `CAST(${q("__idx")} AS BIGINT) AS ${q(c.name)}`;
      return q(c.name);
    });
    return `SELECT ${select.join(", ")} FROM (${expanded}) AS ${this.alias()}`;
  }

  private parse(t: Node<"parse">): string {
    const { regex, groups } = parseRegex(t.parts, t.mode, t.flags);
    const source = this.scalar.text(t.source);
    const matched = `regexp_matches(${source}, ${quoteLiteral(regex)})`;
    const columns = t.parts.filter((p): p is Extract<ParsePart, { kind: "column" }> => p.kind === "column");
    const converted = columns.map((c, i) => convertParsed(`regexp_extract(${source}, ${quoteLiteral(regex)}, ${groups[i]})`, c.type));
    // Simple mode: a value that does not convert to its column's type fails the whole match.
    const allConvert = t.mode === "simple" ? columns.map((c, i) => (c.type === "string" ? "TRUE" : `${converted[i]} IS NOT NULL`)) : [];
    const ok = [matched, ...allConvert].join(" AND ");
    const values = columns.map((c, i) => `CASE WHEN ${ok} THEN ${converted[i]} ELSE ${c.type === "string" ? "''" : nullOf(c.type)} END AS ${q(c.name)}`);
    const inputNames = new Set(t.input.columns.map((c) => c.name));
    const replaced = columns.filter((c) => inputNames.has(c.name)).map((c) => c.name);
    const star = replaced.length ? `* EXCLUDE (${replaced.map(q).join(", ")})` : "*";
    const where = t.keepUnmatched ? "" : ` WHERE ${ok}`;
    const inner = `SELECT ${star}, ${values.join(", ")} FROM ${this.from(t.input)}${where}`;
    return `SELECT ${t.columns.map((c) => q(c.name)).join(", ")} FROM (${inner}) AS ${this.alias()}`;
  }
}

/** Capture groups a piece of user regex opens (so column groups can be numbered after them). */
function capturingGroups(regex: string): number {
  let n = 0;
  let inClass = false;
  for (let i = 0; i < regex.length; i++) {
    const ch = regex[i];
    if (ch === "\\") i++;
    else if (inClass) inClass = ch !== "]";
    else if (ch === "[") inClass = true;
    else if (ch === "(" && (regex[i + 1] !== "?" || regex[i + 2] === "P" || regex[i + 2] === "<")) n++;
  }
  return n;
}

/**
 * The regex a parse pattern stands for. Simple and relaxed modes match literally and
 * lazily; regex mode takes the text pieces as regex and captures greedily unless flag U.
 */
function parseRegex(parts: ParsePart[], mode: string, flags: string): { regex: string; groups: number[] } {
  const groups: number[] = [];
  let group = 0;
  let regex = "";
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    if (p.kind === "star") regex += ".*?";
    else if (p.kind === "text") {
      regex += mode === "regex" ? p.value : escapeRegex(p.value);
      if (mode === "regex") group += capturingGroups(p.value);
    } else {
      group++;
      groups.push(group);
      regex += columnRegex(p.type, mode);
      if (last && mode !== "regex") regex += "$";
    }
  });
  const flagSet = [...new Set(flags.split(""))].filter((f) => "imsU".includes(f)).join("");
  if (mode !== "regex") return { regex: `^${regex}`, groups };
  return { regex: `${flagSet ? `(?${flagSet})` : ""}${regex}`, groups };
}

// Typed columns match their type's text first, so `count: long *` takes the digits, not
// nothing; relaxed mode falls back to any text (which then converts to null).
const NUMBER_TEXT: Partial<Record<KustoType, string>> = {
  int: "-?\\d+",
  long: "-?\\d+",
  real: "-?\\d+(?:\\.\\d*)?(?:[eE][+-]?\\d+)?",
  decimal: "-?\\d+(?:\\.\\d*)?",
};

function columnRegex(type: KustoType, mode: string): string {
  const number = NUMBER_TEXT[type];
  if (mode === "regex") return number ? `(${number})` : "(.*)";
  if (!number) return "(.*?)";
  return mode === "relaxed" ? `(${number}|.*?)` : `(${number})`;
}

function convertParsed(text: string, type: KustoType): string {
  switch (type) {
    case "string":
      return text;
    case "datetime":
      return `CAST(${parseDatetimeSql(text)} AS TIMESTAMP)`;
    case "timespan":
      return parseTimespanSql(text);
    case "int":
    case "long":
      return `CASE WHEN regexp_full_match(trim(${text}), '[+-]?\\d+') THEN TRY_CAST(trim(${text}) AS ${type === "int" ? "INTEGER" : "BIGINT"}) END`;
    case "dynamic":
      return `TRY_CAST(${text} AS JSON)`;
    default:
      return `TRY_CAST(NULLIF(${text}, '') AS ${cast("x", type).slice("CAST(x AS ".length, -1)})`;
  }
}
