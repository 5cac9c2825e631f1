import type { KqlColumn } from "./kql-schema.js";

/**
 * The result type the analyzer gave a syntax node: a scalar type, a table with its
 * columns, or something this library does not model (functions, clusters, ...).
 */
export type DumpedType =
  | { kind: "scalar"; name: string }
  | { kind: "table"; columns: Array<{ name: string; type: string }> }
  | { kind: "other"; name: string };

/**
 * A syntax node of Microsoft's parser copied into plain data inside the worker: its
 * syntax kind, where it sits in the text, the role its parent gives it (`Expression`,
 * `Operator`, ...), its type and the symbol it refers to. Separated lists keep only
 * their elements.
 */
export interface SyntaxDump {
  kind: string;
  role: string;
  start: number;
  end: number;
  text?: string;
  literal?: unknown;
  type?: DumpedType;
  ref?: { name: string; kind: string; display?: string };
  children: SyntaxDump[];
}

export interface DumpedDiagnostic {
  code: string;
  severity: string;
  message: string;
  start: number;
  length: number;
}

export interface AnalysisDump {
  kind: "query" | "command" | "other";
  root: SyntaxDump;
  diagnostics: DumpedDiagnostic[];
  /** Result columns of the whole text, when the analyzer found a table result. */
  resultColumns?: KqlColumn[];
}

export function child(node: SyntaxDump, role: string): SyntaxDump | undefined {
  return node.children.find((c) => c.role === role);
}

export function children(node: SyntaxDump, role: string): SyntaxDump[] {
  return node.children.filter((c) => c.role === role);
}

/** The elements of a (separated) list child, or an empty list when the child is absent. */
export function listOf(node: SyntaxDump | undefined, role?: string): SyntaxDump[] {
  if (!node) return [];
  const list = role === undefined ? node : child(node, role);
  if (!list) return [];
  return list.kind === "List" ? list.children : [list];
}

export function tokens(node: SyntaxDump): SyntaxDump[] {
  if (node.text !== undefined) return [node];
  return node.children.flatMap(tokens);
}

/** Every descendant (and the node itself) in text order. */
export function descendants(node: SyntaxDump): SyntaxDump[] {
  return [node, ...node.children.flatMap(descendants)];
}
