import { COMMAND_RESULT, type Command } from "./command-tree.js";
import { KqlError, kqlErrorAt, UnsupportedKql, type KqlDiagnostic } from "./kql-error.js";
import type { KqlColumn, KqlSchema } from "./kql-schema.js";
import { KustoLanguageHost, type WarmUp } from "./kusto-language-host.js";
import type { TabularExpr } from "./query-tree.js";
import { cast, quoteIdent } from "./sql-fragments.js";
import { TabularSql } from "./tabular-sql.js";
import { lineAndColumn } from "./text-position.js";
import type { Analysis } from "./worker-protocol.js";

export interface TranslatedQuery {
  /** One DuckDB SELECT. Table references are quoted table names, to be bound to views. */
  sql: string;
  /** Result columns with their Kusto types, in order. */
  columns: KqlColumn[];
  /** The schema tables the query reads. */
  tables: string[];
}

export type KqlAnalysis =
  | { kind: "query"; query: TabularExpr; columns: KqlColumn[]; tables: string[] }
  | { kind: "command"; command: Command };

export interface KqlEngine {
  /** When the parser's worker became warm (its first analysis done) and its RSS then. */
  readonly warm: Promise<WarmUp>;
  /** Parses and type-checks a query or command; throws KqlError with the parser's diagnostics. */
  analyze(text: string, schema: KqlSchema): Promise<KqlAnalysis>;
  /** A KQL query as one DuckDB SELECT with Kusto's semantics; KqlError for what cannot be translated. */
  translateQuery(text: string, schema: KqlSchema): Promise<TranslatedQuery>;
  /** A management command; KqlError for unknown or unsupported ones. */
  parseCommand(text: string, schema: KqlSchema): Promise<Command>;
  close(): Promise<void>;
}

/** Starts the parser's worker (warming in the background) and returns the engine over it. */
export function createKqlEngine(): KqlEngine {
  const host = new KustoLanguageHost();

  const analyze = async (text: string, schema: KqlSchema): Promise<KqlAnalysis> => {
    const result = await host.analyze(text, schema);
    return fromAnalysis(text, result);
  };

  return {
    warm: host.warm,
    analyze,
    async translateQuery(text, schema) {
      const analysis = await analyze(text, schema);
      if (analysis.kind !== "query") throw kqlErrorAt(text, 0, "SPW-KQL-NOT-A-QUERY", "expected a query, got a management command");
      return { sql: translate(text, analysis.query), columns: analysis.columns, tables: analysis.tables };
    },
    async parseCommand(text, schema) {
      const analysis = await analyze(text, schema);
      if (analysis.kind !== "command") throw kqlErrorAt(text, 0, "SPW-KQL-NOT-A-COMMAND", "expected a management command (starting with '.')");
      const command = analysis.command;
      // Translating now refuses an unsupported pipe or export query before anything changes.
      if (command.pipe) translate(text, command.pipe.query);
      if (command.kind === "createOrAlterContinuousExport" || command.kind === "exportToTable") translate(text, command.query);
      return command;
    },
    close: () => host.close(),
  };
}

/** The typed tree as one SELECT whose columns carry exactly the parser's names and types. */
export function translate(text: string, query: TabularExpr): string {
  try {
    const first = new TabularSql();
    let body = first.sql(query);
    // Cursor functions read a column the tables yield only when asked: translated again with it.
    if (first.scalar.readsRowCursors) body = new TabularSql(true).sql(query);
    const columns = query.columns.map((c) => {
      const ref = quoteIdent(c.name);
      // datetime stays TIMESTAMP or TIMESTAMP_NS, whichever holds its precision.
      return `${c.type === "datetime" ? ref : cast(ref, c.type)} AS ${ref}`;
    });
    return `SELECT ${columns.join(", ")} FROM (${body}) AS __result`;
  } catch (e: unknown) {
    if (e instanceof UnsupportedKql) throw kqlErrorAt(text, e.offset, "SPW-KQL-UNSUPPORTED", e.message);
    throw e;
  }
}

/** SQL of a command's pipe query; it reads the command's result as the relation COMMAND_RESULT. */
export function translateCommandPipe(text: string, command: Command): TranslatedQuery | undefined {
  if (!command.pipe) return undefined;
  return { sql: translate(text, command.pipe.query), columns: command.pipe.columns, tables: [COMMAND_RESULT] };
}

function fromAnalysis(text: string, a: Analysis): KqlAnalysis {
  switch (a.kind) {
    case "invalid":
      throw new KqlError(a.diagnostics.map((d): KqlDiagnostic => ({ code: d.code, message: d.message, ...lineAndColumn(text, d.start) })));
    case "unsupported":
      throw kqlErrorAt(text, a.offset, a.code, a.message);
    case "query":
      return { kind: "query", query: a.query, columns: a.columns, tables: a.tables };
    case "command":
      return { kind: "command", command: a.command };
  }
}
