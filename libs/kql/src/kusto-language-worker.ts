// Runs in a worker thread: Microsoft's Kusto.Language (a .NET library compiled to
// JavaScript by Bridge.NET) defines globals and holds a few hundred MB, so it never
// loads into the main thread. Only plain data leaves this file.
import { createRequire } from "node:module";
import { parentPort } from "node:worker_threads";
import { AnalysisCache } from "./analysis-cache.js";
import type { KqlSchema, KqlTable } from "./kql-schema.js";
import type { AnalysisDump, DumpedType, SyntaxDump } from "./syntax-dump.js";
import { readCommand, UnknownCommand } from "./command-reader.js";
import { UNSUPPORTED, UnsupportedKql } from "./kql-error.js";
import { QueryReader } from "./query-reader.js";
import type { Analysis, WorkerReply, WorkerRequest } from "./worker-protocol.js";

// The few members of the Bridge.NET surface used here, typed by hand: the package's own
// declarations model the whole .NET library and name it through globals.
interface BridgeList<T> {
  Count: number;
  getItem(index: number): T;
}
interface KSymbol {
  Name: string;
  Kind: number;
  Display?: string;
  Columns?: BridgeList<KColumn>;
}
interface KColumn {
  Name: string;
  Type: KSymbol;
}
interface KElement {
  Kind: number;
  IsToken: boolean;
  Text: string;
  TextStart: number;
  End: number;
  ChildCount: number;
  GetChild(index: number): KElement | null;
  GetName(index: number): string | null;
  ResultType?: KSymbol | null;
  ReferencedSymbol?: KSymbol | null;
  LiteralValue?: unknown;
}
interface KDiagnostic {
  Code: string;
  Severity: string;
  Message: string;
  Start: number;
  Length: number;
}
interface KCode {
  Kind: string;
  Syntax: KElement;
  ResultType: KSymbol | null;
  GetDiagnostics(): unknown;
}
interface KustoGlobals {
  Kusto: {
    Language: {
      KustoCode: { ParseAndAnalyze(text: string, globals: unknown): KCode };
      GlobalState: { Default: { WithDatabase(db: unknown): unknown } };
      Syntax: { SyntaxKind: object };
      Symbols: {
        SymbolKind: object;
        ScalarTypes: Record<string, KSymbol>;
        ColumnSymbol: new (name: string, type: KSymbol, description: null, originalColumns: null, source: null, examples: null) => KColumn;
        TableSymbol: { $ctor4: new (name: string, columns: KColumn[]) => KSymbol };
        ExternalTableSymbol: { $ctor1: new (name: string, columns: KColumn[]) => KSymbol };
        DatabaseSymbol: { $ctor2: new (name: string, alternateName: string | null, members: KSymbol[]) => KSymbol };
      };
    };
  };
  System: { Enum: { toString(enumType: object, value: number): string } };
  Bridge: { toArray<T>(list: unknown): T[] };
}

function loadKustoLanguage(): KustoGlobals {
  const require = createRequire(import.meta.url);
  // The package's `main` alone fails: Bridge's runtime must be loaded first.
  require("@kusto/language-service-next/bridge.js");
  require("@kusto/language-service-next/Kusto.Language.Bridge.js");
  return globalThis as unknown as KustoGlobals;
}

const g = loadKustoLanguage();
const K = g.Kusto.Language;
const S = K.Symbols;

const SCALAR_TYPES: Record<string, KSymbol> = {
  bool: S.ScalarTypes.Bool!,
  int: S.ScalarTypes.Int!,
  long: S.ScalarTypes.Long!,
  real: S.ScalarTypes.Real!,
  decimal: S.ScalarTypes.Decimal!,
  string: S.ScalarTypes.String!,
  datetime: S.ScalarTypes.DateTime!,
  timespan: S.ScalarTypes.TimeSpan!,
  guid: S.ScalarTypes.Guid!,
  dynamic: S.ScalarTypes.Dynamic!,
};

function columnsOf(table: KqlTable): KColumn[] {
  return table.columns.map((c) => new S.ColumnSymbol(c.name, SCALAR_TYPES[c.type]!, null, null, null, null));
}

// Building a GlobalState costs far more than a parse; schemas repeat across calls.
const globalsBySchema = new Map<string, unknown>();
function globalsFor(schema: KqlSchema): unknown {
  const key = JSON.stringify(schema);
  let globals = globalsBySchema.get(key);
  if (globals === undefined) {
    const members: KSymbol[] = [
      ...schema.tables.map((t) => new S.TableSymbol.$ctor4(t.name, columnsOf(t))),
      ...(schema.externalTables ?? []).map((t) => new S.ExternalTableSymbol.$ctor1(t.name, columnsOf(t))),
    ];
    globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.$ctor2(schema.database, null, members));
    if (globalsBySchema.size >= 16) globalsBySchema.delete(globalsBySchema.keys().next().value!);
    globalsBySchema.set(key, globals);
  }
  return globals;
}

const syntaxKindName = (kind: number) => g.System.Enum.toString(K.Syntax.SyntaxKind, kind);
const symbolKindName = (kind: number) => g.System.Enum.toString(S.SymbolKind, kind);

function toList<T>(list: BridgeList<T> | null | undefined): T[] {
  if (!list) return [];
  const out: T[] = [];
  for (let i = 0; i < list.Count; i++) out.push(list.getItem(i));
  return out;
}

function dumpType(type: KSymbol | null | undefined): DumpedType | undefined {
  if (!type) return undefined;
  const kind = symbolKindName(type.Kind);
  if (kind === "Table" || kind === "Group") {
    return { kind: "table", columns: toList(type.Columns).map((c) => ({ name: c.Name, type: c.Type.Name })) };
  }
  if (kind === "Scalar" || kind === "Primitive" || kind === "Array" || kind === "Bag" || kind === "Tuple") {
    return { kind: "scalar", name: kind === "Array" || kind === "Bag" ? "dynamic" : type.Name };
  }
  return { kind: "other", name: `${kind}:${type.Name}` };
}

function plainLiteral(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  // Bridge boxes numbers and booleans; 64-bit integers keep their digits in toString().
  const boxed = value as { v?: unknown; toString(): string };
  if (boxed.v !== undefined && (typeof boxed.v === "number" || typeof boxed.v === "boolean")) return boxed.v;
  return String(boxed.toString());
}

function dump(element: KElement, role: string): SyntaxDump {
  const kind = syntaxKindName(element.Kind);
  const node: SyntaxDump = { kind, role, start: element.TextStart, end: element.End, children: [] };
  if (element.IsToken) {
    node.text = element.Text;
    return node;
  }
  const type = dumpType(element.ResultType);
  if (type) node.type = type;
  const ref = element.ReferencedSymbol;
  if (ref) node.ref = { name: ref.Name, kind: symbolKindName(ref.Kind) };
  if (kind.endsWith("LiteralExpression") || kind === "DynamicExpression") node.literal = plainLiteral(element.LiteralValue);
  for (let i = 0; i < element.ChildCount; i++) {
    const c = element.GetChild(i);
    if (!c) continue;
    const childKind = syntaxKindName(c.Kind);
    if (childKind === "SeparatedElement") {
      // Keep the element, drop the separator token.
      const inner = c.GetChild(0);
      if (inner) node.children.push(dump(inner, ""));
      continue;
    }
    if (c.IsToken && c.Text === "" && childKind === "EndOfTextToken") continue;
    node.children.push(dump(c, element.GetName(i) ?? ""));
  }
  return node;
}

export function analyze(text: string, schema: KqlSchema): AnalysisDump {
  const code = K.KustoCode.ParseAndAnalyze(text, globalsFor(schema));
  const diagnostics = g.Bridge.toArray<KDiagnostic>(code.GetDiagnostics()).map((d) => ({
    code: d.Code,
    severity: d.Severity,
    message: d.Message,
    start: d.Start,
    length: d.Length,
  }));
  const resultType = dumpType(code.ResultType);
  return {
    kind: code.Kind === "Query" ? "query" : code.Kind === "Command" ? "command" : "other",
    root: dump(code.Syntax, ""),
    diagnostics,
    ...(resultType?.kind === "table" ? { resultColumns: resultType.columns as AnalysisDump["resultColumns"] } : {}),
  };
}

/** Parses, type-checks and reads a text into Spillway's query tree or command union. */
export function analysis(text: string, schema: KqlSchema): Analysis {
  const dumped = analyze(text, schema);
  const diagnostics = dumped.diagnostics.filter((d) => d.severity === "Error");
  if (diagnostics.length) return { kind: "invalid", diagnostics };
  try {
    if (dumped.kind === "command") return { kind: "command", diagnostics, command: readCommand(dumped.root, text) };
    if (dumped.kind !== "query") return { kind: "unsupported", diagnostics, message: "expected a query or a command", offset: 0, code: UNSUPPORTED };
    const reader = new QueryReader();
    const query = reader.readQuery(dumped.root);
    return { kind: "query", diagnostics, query, tables: [...reader.tables], columns: query.columns };
  } catch (e: unknown) {
    if (e instanceof UnsupportedKql) {
      return { kind: "unsupported", diagnostics, message: e.message, offset: e.offset, code: e instanceof UnknownCommand ? e.code : UNSUPPORTED };
    }
    throw e;
  }
}

// A first analysis compiles most of the library's lazily built tables; doing it now is
// what makes the worker "warm".
if (parentPort) analyze("print x = 1 | where x > 0 | extend y = strcat('a', x)", { database: "warmup", tables: [] });

const analyses = new AnalysisCache<Analysis>();
parentPort?.on("message", (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    // The reply is a copy (postMessage clones it): what the cache keeps is never changed.
    reply = { id: request.id, ok: true, result: analyses.of(request.text, request.schema, () => analysis(request.text, request.schema)) };
  } catch (e: unknown) {
    reply = { id: request.id, ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});
parentPort?.postMessage({ warm: true, rss: process.memoryUsage().rss });
