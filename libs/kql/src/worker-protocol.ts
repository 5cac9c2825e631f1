import type { Command } from "./command-tree.js";
import type { KqlColumn, KqlSchema } from "./kql-schema.js";
import type { TabularExpr } from "./query-tree.js";
import type { DumpedDiagnostic } from "./syntax-dump.js";

export interface WorkerRequest {
  id: number;
  text: string;
  schema: KqlSchema;
}

/** What the worker makes of a text: a typed query, a command, or why it cannot be run. */
export type Analysis =
  | { kind: "invalid"; diagnostics: DumpedDiagnostic[] }
  | { kind: "query"; diagnostics: DumpedDiagnostic[]; query: TabularExpr; tables: string[]; columns: KqlColumn[] }
  | { kind: "command"; diagnostics: DumpedDiagnostic[]; command: Command }
  | { kind: "unsupported"; diagnostics: DumpedDiagnostic[]; message: string; offset: number; code: string };

export type WorkerReply =
  | { id: number; ok: true; result: Analysis }
  | { id: number; ok: false; error: string };

/** The worker's first message: the parser is loaded and has analyzed one query. */
export interface WorkerWarm {
  warm: true;
  rss: number;
}
