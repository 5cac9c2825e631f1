import type { KustoType } from "@spillway/kusto";
import { UnsupportedKql } from "./kql-error.js";
import type { ScalarExpr, TabularExpr } from "./query-tree.js";
import { SCALAR_FUNCTIONS } from "./scalar-functions.js";
import {
  bindOnce, cast, duckType, fromDynamicSql, intervalOfMicros, jsonIndexPath, jsonKeyPath, micros, nullOf, quoteIdent, quoteLiteral,
} from "./sql-fragments.js";

type Call = Extract<ScalarExpr, { kind: "call" }>;

/** What a scalar function translator gets: its call and a way to translate any expression. */
export interface CallContext {
  call: Call;
  args: ScalarExpr[];
  sql(expr: ScalarExpr): string;
  /** Argument `i` translated, converted to `type` when it is of another one. */
  arg(i: number, type?: KustoType): string;
  /** A constant argument's value, or undefined when it is not a literal. */
  constant(i: number): string | number | boolean | null | undefined;
}

const NUMERIC = new Set<KustoType>(["int", "long", "real", "decimal"]);

/** Translates Kusto scalar expressions to DuckDB SQL of the expression's Kusto type. */
/** The cursor functions that read a row's cursor (libs/duck cursor-functions.ts). */
const ROW_CURSOR_FUNCTIONS = new Set(["cursor_after", "cursor_before_or_at", "ingestion_time"]);

export class ScalarSql {
  /** A function that reads rows' cursors was translated: their tables must carry them. */
  readsRowCursors = false;

  constructor(private readonly subquery: (t: TabularExpr) => string) {}

  sql(e: ScalarExpr): string {
    switch (e.kind) {
      case "literal":
        return literalSql(e.type, e.value);
      case "column":
        return quoteIdent(e.name);
      case "negate":
        return e.type === "timespan" ? intervalOfMicros(`-${micros(this.sql(e.operand))}`) : `(-${this.sql(e.operand)})`;
      case "binary":
        return this.binary(e);
      case "between": {
        const sql = `(${this.sql(e.value)} BETWEEN ${this.as(e.low, e.value.type)} AND ${this.as(e.high, e.value.type)})`;
        return e.negated ? `(NOT ${sql})` : sql;
      }
      case "in":
        return this.inList(e);
      case "inTable": {
        const column = e.table.columns[0] ?? unsupported(e, "in (...) needs a table with one column");
        const ci = e.op.endsWith("~");
        const value = ci ? `lower(${this.sql(e.value)})` : this.sql(e.value);
        const inner = ci ? `lower(${quoteIdent(column.name)})` : quoteIdent(column.name);
        const sql = `(${value} IN (SELECT ${inner} FROM (${this.subquery(e.table)})))`;
        return e.op.startsWith("!") ? `(NOT ${sql})` : sql;
      }
      case "member":
        return this.member(e);
      case "call":
        return this.call(e);
      case "typeOf":
      case "star":
        return unsupported(e, `${e.kind === "star" ? "*" : "typeof()"} is not supported here`);
    }
  }

  /** `e` as SQL of `type` (a dynamic value is read as that type; numbers widen). */
  as(e: ScalarExpr, type: KustoType): string {
    const sql = this.sql(e);
    if (e.type === type) return sql;
    if (e.kind === "literal" && e.value === null) return nullOf(type);
    if (e.type === "dynamic") return fromDynamicSql(sql, type);
    if (NUMERIC.has(e.type) && NUMERIC.has(type)) return cast(sql, type);
    return sql;
  }

  private binary(e: Extract<ScalarExpr, { kind: "binary" }>): string {
    const { left, right, op } = e;
    switch (op) {
      case "and":
        return `(${this.as(left, "bool")} AND ${this.as(right, "bool")})`;
      case "or":
        return `(${this.as(left, "bool")} OR ${this.as(right, "bool")})`;
      case "+":
      case "-":
      case "*":
      case "/":
      case "%":
        return this.arithmetic(e);
      case "==":
      case "!=":
      case "<":
      case "<=":
      case ">":
      case ">=":
        return this.comparison(e);
      case "=~":
      case "!~": {
        const sql = `(lower(${this.text(left)}) = lower(${this.text(right)}))`;
        return op === "!~" ? `(NOT ${sql})` : sql;
      }
      case "matches regex":
        return `regexp_matches(${this.text(left)}, ${this.text(right)})`;
      default:
        return this.stringPredicate(e);
    }
  }

  /** A string operand; Kusto strings are never null, so a null reads as "". */
  text(e: ScalarExpr): string {
    if (e.type === "string") return e.kind === "literal" ? this.sql(e) : `coalesce(${this.sql(e)}, '')`;
    return `coalesce(${this.as(e, "string")}, '')`;
  }

  private stringPredicate(e: Extract<ScalarExpr, { kind: "binary" }>): string {
    const negated = e.op.startsWith("!");
    const name = negated ? e.op.slice(1) : e.op;
    const cs = name.endsWith("_cs");
    const base = cs ? name.slice(0, -3) : name;
    const fold = (s: string) => (cs ? s : `lower(${s})`);
    const l = fold(this.text(e.left));
    const r = fold(this.text(e.right));
    let sql: string;
    switch (base) {
      case "contains":
        sql = `contains(${l}, ${r})`;
        break;
      case "startswith":
        sql = `starts_with(${l}, ${r})`;
        break;
      case "endswith":
        sql = `suffix(${l}, ${r})`;
        break;
      case "has":
        sql = hasTermSql(l, r, e.right, cs);
        break;
      default:
        return unsupported(e, `operator '${e.op}' is not supported`);
    }
    return negated ? `(NOT ${sql})` : sql;
  }

  private comparison(e: Extract<ScalarExpr, { kind: "binary" }>): string {
    const { left, right } = e;
    const op = e.op === "==" ? "=" : e.op === "!=" ? "<>" : e.op;
    // A dynamic operand compares as the other side's type, as Kusto does.
    const type = left.type === "dynamic" && right.type !== "dynamic" ? right.type : left.type;
    const l = this.as(left, type);
    const r = this.as(right, left.type === "dynamic" && right.type === "dynamic" ? "dynamic" : type);
    if (type === "string") return `(${this.text(left)} ${op} ${this.text(right)})`;
    if (type === "dynamic") return `(CAST(${l} AS VARCHAR) ${op} CAST(${r} AS VARCHAR))`;
    return `(${l} ${op} ${r})`;
  }

  private arithmetic(e: Extract<ScalarExpr, { kind: "binary" }>): string {
    const { left, right, op, type } = e;
    const lt = left.type;
    const rt = right.type;
    if (lt === "dynamic" || rt === "dynamic") return unsupported(e, `arithmetic on dynamic values is not supported; convert with toint(), todouble(), ...`);
    if (type === "timespan") {
      if (op === "*") {
        const [span, factor] = lt === "timespan" ? [left, right] : [right, left];
        return intervalOfMicros(`round(${micros(this.sql(span))} * ${this.sql(factor)})`);
      }
      if (op === "/" && rt !== "timespan") return intervalOfMicros(`round(${micros(this.sql(left))} / ${this.sql(right)})`);
      if (op === "%") return intervalOfMicros(`(${micros(this.sql(left))} % ${micros(this.sql(right))})`);
      return `(${this.sql(left)} ${op} ${this.sql(right)})`;
    }
    if (lt === "timespan" && rt === "timespan" && op === "/") {
      return `(CAST(${micros(this.sql(left))} AS DOUBLE) / ${micros(this.sql(right))})`;
    }
    if (type === "datetime") return `(${this.sql(left)} ${op} ${this.sql(right)})`;
    const l = this.as(left, type);
    const r = this.as(right, type);
    if (op === "/") {
      if (type === "real") {
        // IEEE division: Kusto gives ±Infinity and NaN where DuckDB gives null.
        return bindOnce(`[${l}, ${r}]`, (p) =>
          `CASE WHEN ${p}[2] = 0 THEN (CASE WHEN ${p}[1] > 0 THEN 'Infinity'::DOUBLE WHEN ${p}[1] < 0 THEN '-Infinity'::DOUBLE ELSE 'NaN'::DOUBLE END) ELSE ${p}[1] / ${p}[2] END`);
      }
      // Integer division truncates toward zero, as in C#.
      if (type === "int" || type === "long") return cast(`(${l} // ${r})`, type);
      return cast(`(${l} / ${r})`, type);
    }
    if (op === "%" && (type === "int" || type === "long")) {
      // Kusto's modulo is never negative: -14 % 12 == 10 and 14 % -12 == 2.
      return cast(bindOnce(`[${l}, ${r}]`, (p) => `((${p}[1] % ${p}[2]) + abs(${p}[2])) % abs(${p}[2])`), type);
    }
    return cast(`(${l} ${op} ${r})`, type);
  }

  private inList(e: Extract<ScalarExpr, { kind: "in" }>): string {
    const ci = e.op.endsWith("~");
    const items: string[] = [];
    for (const item of e.list) {
      if (item.type === "dynamic") {
        if (item.kind !== "literal" || typeof item.value !== "string") return unsupported(item, "in (...) with a dynamic array that is not a literal is not supported");
        const values = JSON.parse(item.value) as unknown;
        for (const v of Array.isArray(values) ? values : [values]) items.push(jsonScalarSql(v, e.value.type, item));
      } else items.push(e.value.type === "string" ? this.text(item) : this.as(item, e.value.type));
    }
    if (items.length === 0) return e.op.startsWith("!") ? "TRUE" : "FALSE";
    const value = e.value.type === "string" ? this.text(e.value) : this.sql(e.value);
    const fold = (s: string) => (ci ? `lower(${s})` : s);
    const sql = `(${fold(value)} IN (${items.map(fold).join(", ")}))`;
    return e.op.startsWith("!") ? `(NOT ${sql})` : sql;
  }

  private member(e: Extract<ScalarExpr, { kind: "member" }>): string {
    if (e.target.type !== "dynamic") return unsupported(e, "element access is supported on dynamic values only");
    const target = this.sql(e.target);
    const key = e.key;
    if (key.kind === "literal" && typeof key.value === "string" && key.type === "string") return `json_extract(${target}, ${quoteLiteral(jsonKeyPath(key.value))})`;
    if (key.kind === "literal" && key.value !== null && (key.type === "long" || key.type === "int")) return `json_extract(${target}, ${quoteLiteral(jsonIndexPath(BigInt(key.value)))})`;
    if (key.kind === "negate" && key.operand.kind === "literal" && key.operand.value !== null && (key.type === "long" || key.type === "int")) {
      return `json_extract(${target}, ${quoteLiteral(jsonIndexPath(-BigInt(key.operand.value)))})`;
    }
    if (key.type === "string") return `json_extract(${target}, '$."' || replace(replace(${this.sql(key)}, '\\', '\\\\'), '"', '\\"') || '"')`;
    if (key.type === "long" || key.type === "int") {
      return bindOnce(this.sql(key), (i) => `json_extract(${target}, CASE WHEN ${i} < 0 THEN '$[#' || ${i} || ']' ELSE '$[' || ${i} || ']' END)`);
    }
    return unsupported(e, "element access takes a string key or an integer index");
  }

  private call(e: Call): string {
    const translate = SCALAR_FUNCTIONS[e.name];
    if (!translate) return unsupported(e, `function '${e.name}' is not supported`);
    if (ROW_CURSOR_FUNCTIONS.has(e.name)) this.readsRowCursors = true;
    const ctx: CallContext = {
      call: e,
      args: e.args,
      sql: (x) => this.sql(x),
      arg: (i, type) => {
        const a = e.args[i] ?? unsupported(e, `${e.name}() needs argument ${i + 1}`);
        if (!type) return this.sql(a);
        return type === "string" ? this.text(a) : this.as(a, type);
      },
      constant: (i) => {
        const a = e.args[i];
        if (a?.kind === "literal") return a.value;
        if (a?.kind === "negate" && a.operand.kind === "literal" && typeof a.operand.value === "string") return `-${a.operand.value}`;
        if (a?.kind === "negate" && a.operand.kind === "literal" && typeof a.operand.value === "number") return -a.operand.value;
        return undefined;
      },
    };
    return translate(ctx);
  }
}

export function unsupported(e: { span: { start: number } }, message: string): never {
  throw new UnsupportedKql(message, e.span.start);
}

/**
 * `has`: the needle is a whole term (or phrase) of the text, case folded by the caller:
 * bounded by the text's ends or by characters that are not letters or digits.
 */
function hasTermSql(text: string, needle: string, needleExpr: ScalarExpr, caseSensitive: boolean): string {
  const escaped = needleExpr.kind === "literal" && typeof needleExpr.value === "string"
    ? quoteLiteral(escapeRegex(caseSensitive ? needleExpr.value : needleExpr.value.toLowerCase()))
    : `regexp_escape(${needle})`;
  return `regexp_matches(${text}, '(?:^|[^\\pL\\pN])' || ${escaped} || '(?:$|[^\\pL\\pN])')`;
}

export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, (c) => `\\${c}`);
}

/** SQL of a JSON scalar from a dynamic literal, in the type it is compared with. */
function jsonScalarSql(v: unknown, type: KustoType, at: ScalarExpr): string {
  if (v === null) return nullOf(type);
  if (typeof v === "string") return type === "string" ? quoteLiteral(v) : cast(quoteLiteral(v), type);
  if (typeof v === "number" || typeof v === "boolean") return cast(String(v), type);
  return unsupported(at, "in (...) with nested dynamic values is not supported");
}

/** SQL of a literal of a Kusto type (see LiteralValue for the encodings). */
export function literalSql(type: KustoType, value: string | number | boolean | null): string {
  if (value === null) return nullOf(type);
  switch (type) {
    case "bool":
      return value ? "TRUE" : "FALSE";
    case "string":
      return quoteLiteral(String(value));
    case "real": {
      const n = Number(value);
      if (Number.isNaN(n)) return "'NaN'::DOUBLE";
      if (!Number.isFinite(n)) return n > 0 ? "'Infinity'::DOUBLE" : "'-Infinity'::DOUBLE";
      return `CAST(${JSON.stringify(n)} AS DOUBLE)`;
    }
    case "int":
    case "long":
      return cast(String(value), type);
    case "decimal":
      return cast(quoteLiteral(String(value)), type);
    case "datetime": {
      const iso = String(value);
      // TIMESTAMP holds microseconds; a 100-ns digit needs TIMESTAMP_NS.
      const subMicro = /\.\d{6}[1-9]Z$/.test(iso);
      return `CAST(${quoteLiteral(iso.replace("T", " ").replace(/Z$/, ""))} AS ${subMicro ? "TIMESTAMP_NS" : "TIMESTAMP"})`;
    }
    case "timespan":
      return intervalOfMicros(String(BigInt(String(value)) / 10n));
    case "guid":
      return cast(quoteLiteral(String(value)), "guid");
    case "dynamic":
      return `CAST(${quoteLiteral(String(value))} AS JSON)`;
  }
}

export { duckType };
