import type { KustoType } from "@spillway/kusto";
import { COMMAND_RESULT } from "./command-tree.js";
import { UnsupportedKql } from "./kql-error.js";
import type { KqlColumn } from "./kql-schema.js";
import { datetimeIso, realValue, timespanTicks } from "./kusto-literals.js";
import type {
  Aggregate, BinaryOperator, JoinKind, MvExpansion, NamedExpr, ParsePart, ScalarExpr, SortKey, Span, TabularExpr,
} from "./query-tree.js";
import { child, listOf, tokens, type SyntaxDump } from "./syntax-dump.js";

const KUSTO_TYPES = new Set(["bool", "int", "long", "real", "decimal", "string", "datetime", "timespan", "guid", "dynamic"]);

const BINARY: Record<string, BinaryOperator> = {
  AddExpression: "+", SubtractExpression: "-", MultiplyExpression: "*", DivideExpression: "/", ModuloExpression: "%",
  EqualExpression: "==", NotEqualExpression: "!=", LessThanExpression: "<", LessThanOrEqualExpression: "<=",
  GreaterThanExpression: ">", GreaterThanOrEqualExpression: ">=", EqualTildeExpression: "=~", BangTildeExpression: "!~",
  AndExpression: "and", OrExpression: "or",
  HasExpression: "has", NotHasExpression: "!has", HasCsExpression: "has_cs", NotHasCsExpression: "!has_cs",
  ContainsExpression: "contains", NotContainsExpression: "!contains", ContainsCsExpression: "contains_cs", NotContainsCsExpression: "!contains_cs",
  StartsWithExpression: "startswith", NotStartsWithExpression: "!startswith", StartsWithCsExpression: "startswith_cs", NotStartsWithCsExpression: "!startswith_cs",
  EndsWithExpression: "endswith", NotEndsWithExpression: "!endswith", EndsWithCsExpression: "endswith_cs", NotEndsWithCsExpression: "!endswith_cs",
  MatchesRegexExpression: "matches regex",
};

// Kusto.Language names `in~` InCs (and `!in~` NotInCs).
const IN_OPERATORS: Record<string, "in" | "!in" | "in~" | "!in~"> = {
  InExpression: "in", NotInExpression: "!in", InCsExpression: "in~", NotInCsExpression: "!in~",
};

const JOIN_KINDS = new Set<JoinKind>(["innerunique", "inner", "leftouter", "rightouter", "fullouter", "leftanti", "rightanti", "leftsemi", "rightsemi"]);
const JOIN_ALIASES: Record<string, JoinKind> = { anti: "leftanti", leftantisemi: "leftanti", rightantisemi: "rightanti", semi: "leftsemi" };

interface UserFunction {
  params: string[];
  body: SyntaxDump;
  env: Env;
}

/** What the names of `let` statements and function parameters stand for. */
interface Env {
  scalars: Map<string, ScalarExpr>;
  tables: Map<string, TabularExpr>;
  functions: Map<string, UserFunction>;
}

const span = (n: SyntaxDump): Span => ({ start: n.start, end: n.end });

function fail(node: SyntaxDump, message: string): never {
  throw new UnsupportedKql(message, node.start);
}

function required(node: SyntaxDump, role: string): SyntaxDump {
  return child(node, role) ?? fail(node, `expected ${role} in ${node.kind}`);
}

/** The keyword an operator starts with, to name it in errors (`mv-apply`, `evaluate`, ...). */
function operatorName(node: SyntaxDump): string {
  return tokens(node)[0]?.text ?? node.kind;
}

function nameOf(node: SyntaxDump): string {
  // NameDeclaration / NameReference → TokenName | BracketedName → the identifier or string.
  const inner = child(node, "Name") ?? node;
  if (inner.kind === "TokenName") return inner.children[0]!.text!;
  if (inner.kind === "BracketedName") {
    const lit = child(inner, "Name");
    if (lit?.text !== undefined) return unquote(lit.text);
  }
  if (inner.text !== undefined) return inner.text;
  if (inner !== node) return nameOf(inner);
  return fail(node, `cannot read a name from ${node.kind}`);
}

function unquote(literal: string): string {
  const verbatim = literal.startsWith("@");
  const body = (verbatim ? literal.slice(1) : literal).slice(1, -1);
  return verbatim ? body : (JSON.parse(`"${body.replace(/\\'/g, "'").replace(/"/g, '\\"').replace(/\\\\"/g, '\\"')}"`) as string);
}

function scalarType(node: SyntaxDump): KustoType {
  const t = node.type;
  if (t?.kind === "scalar" && KUSTO_TYPES.has(t.name)) return t.name as KustoType;
  return fail(node, `an expression of type ${t?.kind === "table" ? "table" : t?.name ?? "unknown"} is not supported here`);
}

function tableColumns(node: SyntaxDump): KqlColumn[] {
  const t = node.type;
  if (t?.kind !== "table") return fail(node, "expected a tabular expression");
  return t.columns.map((c) => {
    if (!KUSTO_TYPES.has(c.type)) fail(node, `column '${c.name}' has type ${c.type}, which is not supported`);
    return { name: c.name, type: c.type as KustoType };
  });
}

function literalOf(node: SyntaxDump, type: KustoType): ScalarExpr {
  const token = tokens(node).map((t) => t.text).join("");
  let value: string | number | boolean | null | undefined;
  switch (type) {
    case "datetime":
      value = datetimeIso(token);
      break;
    case "timespan": {
      const ticks = timespanTicks(token);
      value = ticks === undefined ? undefined : ticks === null ? null : ticks.toString();
      break;
    }
    case "real":
      value = realValue(token);
      break;
    case "long":
    case "int":
    case "decimal":
      value = node.literal === null ? null : String(node.literal);
      break;
    default:
      value = node.literal as string | number | boolean | null;
  }
  if (value === undefined) fail(node, `cannot read the literal ${token}`);
  return { kind: "literal", type, value, span: span(node) };
}

export class QueryReader {
  /** Names of the database tables the query reads. */
  readonly tables = new Set<string>();

  /**
   * @param commandResult the columns of the command a pipe follows (`.show ... | where`),
   *   read as the relation COMMAND_RESULT; absent for plain queries.
   */
  constructor(private readonly commandResult?: KqlColumn[]) {}

  /** Reads a QueryBlock (let statements, then one tabular expression). */
  readQuery(root: SyntaxDump): TabularExpr {
    return this.readStatements(listOf(root, "Statements"), root);
  }

  readStatements(statements: SyntaxDump[], at: SyntaxDump): TabularExpr {
    const env: Env = { scalars: new Map(), tables: new Map(), functions: new Map() };
    let result: TabularExpr | undefined;
    for (const statement of statements) {
      if (statement.kind === "LetStatement") this.readLet(statement, env);
      else if (statement.kind === "ExpressionStatement") {
        if (result) fail(statement, "a query may have only one result");
        result = this.readTabular(required(statement, "Expression"), env);
      } else fail(statement, `statement ${operatorName(statement)} is not supported`);
    }
    return result ?? fail(at, "the query has no tabular expression");
  }

  private readLet(statement: SyntaxDump, env: Env): void {
    const name = nameOf(required(statement, "Name"));
    const value = required(statement, "Expression");
    if (value.kind === "FunctionDeclaration") {
      const params = listOf(child(required(value, "Parameters"), "Parameters")).map((p) => {
        const decl = child(p, "NameAndType") ?? fail(p, "function parameters need a name and a type");
        if (child(p, "DefaultValue")) fail(p, "default parameter values are not supported");
        const typeNode = child(decl, "Type");
        if (typeNode && typeNode.kind !== "PrimitiveTypeExpression") fail(p, "tabular function parameters are not supported");
        return nameOf(required(decl, "Name"));
      });
      env.functions.set(name, { params, body: required(value, "Body"), env: cloneEnv(env) });
    } else if (value.type?.kind === "table") {
      env.tables.set(name, this.readTabular(value, env));
    } else {
      env.scalars.set(name, this.readScalar(value, env));
    }
  }

  private readTabular(node: SyntaxDump, env: Env): TabularExpr {
    switch (node.kind) {
      case "PipeExpression":
        return this.readOperator(required(node, "Operator"), this.readTabular(required(node, "Expression"), env), env);
      case "ParenthesizedExpression":
        return this.readTabular(required(node, "Expression"), env);
      case "NameReference":
        return this.readTableName(node, env);
      case "DataTableExpression":
        return this.readDataTable(node, env);
      case "RangeOperator":
        return {
          kind: "range", columns: tableColumns(node), span: span(node),
          from: this.readScalar(required(node, "From"), env),
          to: this.readScalar(required(node, "To"), env),
          step: this.readScalar(required(node, "Step"), env),
        };
      case "PrintOperator":
        return { kind: "print", columns: tableColumns(node), span: span(node), items: this.readNamedList(node, listOf(node, "Expressions"), env, "project") };
      case "UnionOperator":
        return this.readUnion(node, undefined, env);
      case "FunctionCallExpression":
        return this.readTabularCall(node, env);
      case "CustomCommand":
        if (this.commandResult) return { kind: "table", name: COMMAND_RESULT, columns: this.commandResult, span: span(node) };
        return fail(node, "a command cannot appear inside a query");
      default:
        return fail(node, `${node.kind === "ExternalDataExpression" ? "externaldata" : operatorName(node)} is not supported`);
    }
  }

  private readTableName(node: SyntaxDump, env: Env): TabularExpr {
    const name = nameOf(node);
    const ref = node.ref;
    if (ref?.kind === "Table") {
      this.tables.add(ref.name);
      return { kind: "table", name: ref.name, columns: tableColumns(node), span: span(node) };
    }
    const bound = env.tables.get(name);
    if (bound) return bound;
    const fn = env.functions.get(name);
    if (fn && fn.params.length === 0) return this.inlineTabular(node, fn, []);
    return fail(node, `'${name}' is not a table this query may read`);
  }

  private readTabularCall(node: SyntaxDump, env: Env): TabularExpr {
    const name = nameOf(required(node, "Name"));
    const fn = env.functions.get(name);
    if (!fn) return fail(node, `function '${name}' is not supported`);
    const args = listOf(child(required(node, "ArgumentList"), "Expressions")).map((a) => this.readScalar(a, env));
    return this.inlineTabular(node, fn, args);
  }

  private inlineTabular(node: SyntaxDump, fn: UserFunction, args: ScalarExpr[]): TabularExpr {
    const env = this.bindParameters(node, fn, args);
    for (const s of listOf(fn.body, "Statements")) this.readLet(s, env);
    return this.readTabular(required(fn.body, "Expression"), env);
  }

  private bindParameters(node: SyntaxDump, fn: UserFunction, args: ScalarExpr[]): Env {
    if (args.length !== fn.params.length) fail(node, "user functions must be called with every parameter");
    const env = cloneEnv(fn.env);
    fn.params.forEach((p, i) => env.scalars.set(p, args[i]!));
    return env;
  }

  private readDataTable(node: SyntaxDump, env: Env): TabularExpr {
    const columns = tableColumns(node);
    const values = listOf(node, "Values").map((v) => this.readScalar(v, env));
    if (values.some((v) => v.kind !== "literal" && !(v.kind === "negate" && v.operand.kind === "literal"))) {
      fail(node, "datatable values must be literals");
    }
    if (values.length % columns.length !== 0) fail(node, "datatable values do not fill whole rows");
    const rows: ScalarExpr[][] = [];
    for (let i = 0; i < values.length; i += columns.length) rows.push(values.slice(i, i + columns.length));
    return { kind: "datatable", columns, rows, span: span(node) };
  }

  private readOperator(op: SyntaxDump, input: TabularExpr, env: Env): TabularExpr {
    const columns = tableColumns(op);
    const base = { columns, span: span(op) };
    switch (op.kind) {
      case "FilterOperator":
        this.noParameters(op);
        return { kind: "where", ...base, input, predicate: this.readScalar(required(op, "Condition"), env) };
      case "ProjectOperator":
        return { kind: "project", ...base, input, items: this.readNamedList(op, listOf(op, "Expressions"), env, "project") };
      case "ExtendOperator":
        return { kind: "extend", ...base, input, items: this.readExtendItems(op, input, env) };
      case "ProjectAwayOperator":
      case "ProjectReorderOperator":
        // The parser already applied names and wildcards: the result lists the columns kept.
        return { kind: "select", ...base, input, sources: columns.map((c) => c.name) };
      case "ProjectRenameOperator": {
        const renames = new Map<string, string>();
        for (const e of listOf(op, "Expressions")) {
          if (e.kind !== "SimpleNamedExpression") fail(e, "project-rename takes new = old pairs");
          const from = required(e, "Expression");
          if (from.kind !== "NameReference") fail(from, "project-rename takes column names");
          renames.set(nameOf(required(e, "Name")), nameOf(from));
        }
        return { kind: "select", ...base, input, sources: columns.map((c) => renames.get(c.name) ?? c.name) };
      }
      case "SummarizeOperator":
        return this.readSummarize(op, input, env);
      case "JoinOperator":
        return this.readJoin(op, input, env);
      case "LookupOperator":
        return this.readLookup(op, input, env);
      case "UnionOperator":
        return this.readUnion(op, input, env);
      case "DistinctOperator": {
        for (const e of listOf(op, "Expressions")) {
          if (e.kind !== "NameReference" && e.kind !== "StarExpression") fail(e, "distinct takes column names or *");
        }
        return { kind: "distinct", ...base, input };
      }
      case "TakeOperator":
        this.noParameters(op);
        return { kind: "take", ...base, input, count: this.readScalar(required(op, "Expression"), env) };
      case "TopOperator":
        this.noParameters(op);
        return { kind: "top", ...base, input, count: this.readScalar(required(op, "Expression"), env), by: this.readSortKey(required(op, "ByExpression"), env) };
      case "SortOperator":
        this.noParameters(op);
        return { kind: "sort", ...base, input, by: listOf(op, "Expressions").map((e) => this.readSortKey(e, env)) };
      case "CountOperator":
        return { kind: "count", ...base, input };
      case "AsOperator":
        return { ...input, columns };
      case "MvExpandOperator":
        return this.readMvExpand(op, input, env);
      case "ParseOperator":
      case "ParseWhereOperator":
        return this.readParse(op, input, env);
      default:
        return fail(op, `operator '${operatorName(op)}' is not supported`);
    }
  }

  private noParameters(op: SyntaxDump): void {
    const params = listOf(op, "Parameters");
    if (params.length) fail(params[0]!, `parameters of '${operatorName(op)}' are not supported`);
  }

  private parameters(op: SyntaxDump, allowed: string[]): Map<string, SyntaxDump> {
    const out = new Map<string, SyntaxDump>();
    for (const p of listOf(op, "Parameters")) {
      if (p.kind !== "NamedParameter") continue;
      const name = nameOf(required(p, "Name"));
      if (name.startsWith("hint.")) continue;
      if (!allowed.includes(name)) fail(p, `parameter '${name}' of '${operatorName(op)}' is not supported`);
      out.set(name, required(p, "Expression"));
    }
    return out;
  }

  private readNamedList(op: SyntaxDump, items: SyntaxDump[], env: Env, how: "project"): NamedExpr[] {
    const columns = tableColumns(op);
    if (how === "project" && columns.length !== items.length) fail(op, `'${operatorName(op)}' with wildcards or multi-column expressions is not supported`);
    return items.map((item, i) => {
      if (item.kind === "CompoundNamedExpression") fail(item, "(a, b) = ... is not supported");
      const expr = item.kind === "SimpleNamedExpression" ? required(item, "Expression") : item;
      return { name: columns[i]!.name, expr: this.readScalar(expr, env) };
    });
  }

  private readExtendItems(op: SyntaxDump, input: TabularExpr, env: Env): NamedExpr[] {
    const columns = tableColumns(op);
    const inputNames = new Set(input.columns.map((c) => c.name));
    const fresh = columns.filter((c) => !inputNames.has(c.name)).map((c) => c.name);
    return listOf(op, "Expressions").map((item) => {
      if (item.kind === "CompoundNamedExpression") fail(item, "(a, b) = ... is not supported");
      if (item.kind === "SimpleNamedExpression") {
        const name = nameOf(required(item, "Name"));
        if (!inputNames.has(name)) fresh.splice(fresh.indexOf(name), 1);
        return { name, expr: this.readScalar(required(item, "Expression"), env) };
      }
      const name = item.kind === "NameReference" && item.ref?.kind === "Column" ? nameOf(item) : fresh.shift();
      return { name: name ?? fail(item, "cannot tell which column this expression makes"), expr: this.readScalar(item, env) };
    });
  }

  private readSummarize(op: SyntaxDump, input: TabularExpr, env: Env): TabularExpr {
    this.noParameters(op);
    const columns = tableColumns(op);
    const byNodes = listOf(child(op, "ByClause"), "Expressions");
    const by: NamedExpr[] = byNodes.map((item, i) => {
      const expr = item.kind === "SimpleNamedExpression" ? required(item, "Expression") : item;
      return { name: columns[i]!.name, expr: this.readScalar(expr, env) };
    });
    const aggNodes = listOf(op, "Aggregates");
    const outputs = columns.slice(by.length);
    const calls = aggNodes.map((item) => {
      const call = item.kind === "SimpleNamedExpression" ? required(item, "Expression") : item;
      if (call.kind !== "FunctionCallExpression") fail(call, "summarize takes aggregate function calls");
      const fn = nameOf(required(call, "Name"));
      const args = listOf(child(required(call, "ArgumentList"), "Expressions"));
      return { item, call, fn, args };
    });
    // Each aggregate makes one column, except arg_max/arg_min: one per extra argument,
    // or for `*` every input column the others leave.
    const fixedWidth = (c: (typeof calls)[number]) =>
      c.fn === "arg_max" || c.fn === "arg_min" ? (c.args.some((a) => a.kind === "StarExpression") ? undefined : c.args.length) : c.fn === "percentiles" ? c.args.length - 1 : 1;
    const known = calls.reduce((n, c) => n + (fixedWidth(c) ?? 0), 0);
    const stars = calls.filter((c) => fixedWidth(c) === undefined).length;
    if (stars > 1) fail(op, "only one arg_max/arg_min with * per summarize is supported");
    let next = 0;
    const aggregates: Aggregate[] = calls.map((c) => {
      const width = fixedWidth(c) ?? outputs.length - known;
      const mine = outputs.slice(next, next + width);
      next += width;
      return { fn: c.fn, args: c.args.map((a) => this.readScalar(a, env)), outputs: mine, span: span(c.call) };
    });
    if (next !== outputs.length) fail(op, "cannot match the aggregates to the result columns");
    return { kind: "summarize", columns, span: span(op), input, by, aggregates };
  }

  private readOnClause(clause: SyntaxDump | undefined, op: SyntaxDump): Array<{ left: string; right: string }> {
    if (!clause || clause.kind !== "JoinOnClause") return fail(clause ?? op, `'${operatorName(op)}' needs an 'on' clause with column names`);
    return listOf(clause, "Expressions").map((e) => {
      if (e.kind === "NameReference") {
        const n = nameOf(e);
        return { left: n, right: n };
      }
      if (e.kind === "EqualExpression") {
        const side = (x: SyntaxDump) => {
          if (x.kind !== "PathExpression") fail(x, "join conditions compare $left.column with $right.column");
          const which = nameOf(required(x, "Expression"));
          return { which, column: nameOf(required(x, "Selector")) };
        };
        const a = side(required(e, "Left"));
        const b = side(required(e, "Right"));
        if (a.which === "$left" && b.which === "$right") return { left: a.column, right: b.column };
        if (a.which === "$right" && b.which === "$left") return { left: b.column, right: a.column };
      }
      return fail(e, "join conditions compare $left.column with $right.column");
    });
  }

  private readJoin(op: SyntaxDump, left: TabularExpr, env: Env): TabularExpr {
    const params = this.parameters(op, ["kind"]);
    const kindNode = params.get("kind");
    const written = kindNode ? tokens(kindNode).map((t) => t.text).join("") : "innerunique";
    const joinKind = JOIN_ALIASES[written] ?? (JOIN_KINDS.has(written as JoinKind) ? (written as JoinKind) : fail(kindNode ?? op, `join kind '${written}' is not supported`));
    const right = this.readTabular(required(op, "Expression"), env);
    return { kind: "join", columns: tableColumns(op), span: span(op), joinKind, left, right, on: this.readOnClause(child(op, "ConditionClause"), op) };
  }

  private readLookup(op: SyntaxDump, left: TabularExpr, env: Env): TabularExpr {
    const params = this.parameters(op, ["kind"]);
    const kindNode = params.get("kind");
    const written = kindNode ? tokens(kindNode).map((t) => t.text).join("") : "leftouter";
    if (written !== "leftouter" && written !== "inner") fail(kindNode ?? op, `lookup kind '${written}' is not supported`);
    const right = this.readTabular(required(op, "Expression"), env);
    return { kind: "lookup", columns: tableColumns(op), span: span(op), lookupKind: written, left, right, on: this.readOnClause(child(op, "LookupClause"), op) };
  }

  private readUnion(op: SyntaxDump, input: TabularExpr | undefined, env: Env): TabularExpr {
    const params = this.parameters(op, ["kind", "withsource", "isfuzzy"]);
    const kind = params.get("kind");
    if (kind && tokens(kind).map((t) => t.text).join("") !== "outer") fail(kind, "only union kind=outer is supported");
    const fuzzy = params.get("isfuzzy");
    if (fuzzy && tokens(fuzzy).map((t) => t.text).join("") !== "false") fail(fuzzy, "union isfuzzy=true is not supported");
    const source = params.get("withsource");
    const operands = listOf(op, "Expressions");
    const inputs = [...(input ? [input] : []), ...operands.map((o) => this.readTabular(o, env))];
    const sourceNames = [
      ...(input ? [input.kind === "table" ? input.name : ""] : []),
      ...operands.map((o) => (o.kind === "NameReference" ? nameOf(o) : "")),
    ];
    if (source && sourceNames.some((n) => n === "")) fail(source, "union withsource names only tables and let names");
    return {
      kind: "union", columns: tableColumns(op), span: span(op), inputs, sourceNames,
      ...(source ? { sourceColumn: nameOf(source) } : {}),
    };
  }

  private readSortKey(node: SyntaxDump, env: Env): SortKey {
    const expr = node.kind === "OrderedExpression" ? required(node, "Expression") : node;
    const ordering = node.kind === "OrderedExpression" ? child(node, "Ordering") : undefined;
    const direction = ordering && child(ordering, "AscOrDescKeyword")?.text;
    const descending = direction !== "asc";
    const nulls = ordering && child(ordering, "NullsClause");
    const firstOrLast = nulls && child(nulls, "FirstOrLastKeyword")?.text;
    // Kusto's default puts nulls where the smallest values go: first ascending, last descending.
    const nullsFirst = firstOrLast ? firstOrLast === "first" : !descending;
    return { expr: this.readScalar(expr, env), descending, nullsFirst };
  }

  private readMvExpand(op: SyntaxDump, input: TabularExpr, env: Env): TabularExpr {
    const params = this.parameters(op, ["kind", "bagexpansion", "with_itemindex"]);
    const kindNode = params.get("kind") ?? params.get("bagexpansion");
    const bagMode = kindNode ? tokens(kindNode).map((t) => t.text).join("") : "bag";
    if (bagMode !== "bag" && bagMode !== "array") fail(kindNode!, `mv-expand kind '${bagMode}' is not supported`);
    const indexNode = params.get("with_itemindex");
    const columns = tableColumns(op);
    const expansions: MvExpansion[] = listOf(op, "Expressions").map((e) => {
      const inner = required(e, "Expression");
      const named = inner.kind === "SimpleNamedExpression";
      const exprNode = named ? required(inner, "Expression") : inner;
      if (!named && exprNode.kind !== "NameReference") fail(exprNode, "mv-expand of an unnamed expression is not supported");
      const name = named ? nameOf(required(inner, "Name")) : nameOf(exprNode);
      const toTypeOf = child(e, "ToTypeOf");
      const typeOf = toTypeOf && child(toTypeOf, "TypeOf");
      const toType = typeOf ? (typeOf.ref?.name as KustoType | undefined) : undefined;
      if (typeOf && (!toType || !KUSTO_TYPES.has(toType))) fail(typeOf, "mv-expand to typeof(...) of this type is not supported");
      return { name, expr: this.readScalar(exprNode, env), ...(toType ? { toType } : {}) };
    });
    const limitClause = child(op, "RowLimitClause");
    return {
      kind: "mvExpand", columns, span: span(op), input, expansions, bagsAsArrays: bagMode === "array",
      ...(indexNode ? { itemIndex: nameOf(indexNode) } : {}),
      ...(limitClause ? { limit: this.readScalar(required(limitClause, "RowLimit"), env) } : {}),
    };
  }

  private readParse(op: SyntaxDump, input: TabularExpr, env: Env): TabularExpr {
    const params = this.parameters(op, ["kind", "flags"]);
    const kindNode = params.get("kind");
    const mode = kindNode ? tokens(kindNode).map((t) => t.text).join("") : "simple";
    if (mode !== "simple" && mode !== "regex" && mode !== "relaxed") fail(kindNode!, `parse kind '${mode}' is not supported`);
    const flagsNode = params.get("flags");
    const flags = flagsNode ? tokens(flagsNode).map((t) => t.text).join("") : "";
    const columns = tableColumns(op);
    const typeOf = (name: string) => columns.find((c) => c.name === name)?.type ?? fail(op, `parse column ${name} is missing from the result`);
    const parts: ParsePart[] = listOf(op, "Patterns").map((p) => {
      if (p.kind === "StarExpression") return { kind: "star" };
      if (p.kind === "StringLiteralExpression") return { kind: "text", value: String(p.literal) };
      if (p.kind === "NameAndTypeDeclaration" || p.kind === "NameDeclaration") {
        const name = nameOf(p.kind === "NameDeclaration" ? p : required(p, "Name"));
        return { kind: "column", name, type: typeOf(name) };
      }
      return fail(p, "parse patterns are *, string literals and columns");
    });
    return {
      kind: "parse", columns, span: span(op), input, source: this.readScalar(required(op, "Expression"), env),
      mode, flags, parts, keepUnmatched: op.kind === "ParseOperator",
    };
  }

  readScalar(node: SyntaxDump, env: Env): ScalarExpr {
    const k = node.kind;
    const binary = BINARY[k];
    if (binary) {
      return {
        kind: "binary", op: binary, type: scalarType(node), span: span(node),
        left: this.readScalar(required(node, "Left"), env), right: this.readScalar(required(node, "Right"), env),
      };
    }
    const inOp = IN_OPERATORS[k];
    if (inOp) return this.readIn(node, inOp, env);
    switch (k) {
      case "ParenthesizedExpression":
        return this.readScalar(required(node, "Expression"), env);
      case "BooleanLiteralExpression":
      case "IntLiteralExpression":
      case "LongLiteralExpression":
      case "RealLiteralExpression":
      case "DecimalLiteralExpression":
      case "DateTimeLiteralExpression":
      case "TimespanLiteralExpression":
      case "GuidLiteralExpression":
      case "StringLiteralExpression":
        return literalOf(node, scalarType(node));
      case "CompoundStringLiteralExpression":
        return { kind: "literal", type: "string", value: String(node.literal), span: span(node) };
      case "DynamicExpression":
        return { kind: "literal", type: "dynamic", value: node.literal === null ? null : String(node.literal), span: span(node) };
      case "NameReference":
        return this.readNameReference(node, env);
      case "UnaryMinusExpression":
        return { kind: "negate", operand: this.readScalar(required(node, "Expression"), env), type: scalarType(node), span: span(node) };
      case "UnaryPlusExpression":
        return this.readScalar(required(node, "Expression"), env);
      case "BetweenExpression":
      case "NotBetweenExpression": {
        const range = required(node, "Right");
        return {
          kind: "between", negated: k === "NotBetweenExpression", type: "bool", span: span(node),
          value: this.readScalar(required(node, "Left"), env),
          low: this.readScalar(required(range, "First"), env), high: this.readScalar(required(range, "Second"), env),
        };
      }
      case "FunctionCallExpression":
        return this.readCall(node, env);
      case "PathExpression": {
        const selector = required(node, "Selector");
        const key: ScalarExpr = { kind: "literal", type: "string", value: nameOf(selector), span: span(selector) };
        return { kind: "member", target: this.readScalar(required(node, "Expression"), env), key, type: scalarType(node), span: span(node) };
      }
      case "ElementExpression": {
        const selector = required(node, "Selector");
        const keyNode = selector.kind === "BracketedExpression" ? required(selector, "Expression") : selector;
        return { kind: "member", target: this.readScalar(required(node, "Expression"), env), key: this.readScalar(keyNode, env), type: scalarType(node), span: span(node) };
      }
      case "TypeOfLiteralExpression": {
        const of = node.ref?.name;
        if (!of || !KUSTO_TYPES.has(of)) fail(node, "typeof of this type is not supported");
        return { kind: "typeOf", of: of as KustoType, type: of as KustoType, span: span(node) };
      }
      case "StarExpression":
        return { kind: "star", type: "dynamic", span: span(node) };
      case "ToScalarExpression":
        return fail(node, "toscalar() is not supported");
      default:
        return fail(node, `${operatorName(node)} (${k}) is not supported`);
    }
  }

  private readNameReference(node: SyntaxDump, env: Env): ScalarExpr {
    const name = nameOf(node);
    const kind = node.ref?.kind;
    if (kind === "Column") return { kind: "column", name: node.ref!.name, type: scalarType(node), span: span(node) };
    const bound = env.scalars.get(name);
    if (bound && (kind === "Variable" || kind === "Parameter")) return bound;
    const fn = env.functions.get(name);
    if (fn && fn.params.length === 0 && node.type?.kind === "scalar") return this.inlineScalar(node, fn, []);
    return fail(node, `'${name}' is not supported here`);
  }

  private readCall(node: SyntaxDump, env: Env): ScalarExpr {
    const name = nameOf(required(node, "Name"));
    const args = listOf(child(required(node, "ArgumentList"), "Expressions"));
    const fn = env.functions.get(name);
    if (fn) return this.inlineScalar(node, fn, args.map((a) => this.readScalar(a, env)));
    if (node.ref?.kind !== "Function") fail(node, `'${name}' is not a function`);
    return { kind: "call", name: node.ref.name, args: args.map((a) => this.readScalar(a, env)), type: this.callType(node), span: span(node) };
  }

  // Aggregates such as arg_max type as tuples; their columns come from the summarize result.
  private callType(node: SyntaxDump): KustoType {
    return node.type?.kind === "scalar" && KUSTO_TYPES.has(node.type.name) ? (node.type.name as KustoType) : "dynamic";
  }

  private inlineScalar(node: SyntaxDump, fn: UserFunction, args: ScalarExpr[]): ScalarExpr {
    const env = this.bindParameters(node, fn, args);
    for (const s of listOf(fn.body, "Statements")) this.readLet(s, env);
    return this.readScalar(required(fn.body, "Expression"), env);
  }

  private readIn(node: SyntaxDump, op: "in" | "!in" | "in~" | "!in~", env: Env): ScalarExpr {
    const value = this.readScalar(required(node, "Left"), env);
    const items = listOf(child(required(node, "Right"), "Expressions"));
    if (items.length === 1 && items[0]!.type?.kind === "table") {
      return { kind: "inTable", op, value, table: this.readTabular(items[0]!, env), type: "bool", span: span(node) };
    }
    return { kind: "in", op, value, list: items.map((i) => this.readScalar(i, env)), type: "bool", span: span(node) };
  }
}

function cloneEnv(env: Env): Env {
  return { scalars: new Map(env.scalars), tables: new Map(env.tables), functions: new Map(env.functions) };
}
