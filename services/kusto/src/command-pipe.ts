import { invalidArgument } from "@spillway/errors";
import { COMMAND_RESULT, translate, translateCommandPipe, type Command, type KqlColumn, type TabularExpr } from "@spillway/kql";
import type { ResultTable } from "./result-table.js";

/** SQL over the relation COMMAND_RESULT, and the columns it gives. */
export interface ResultQuery {
  /** The columns COMMAND_RESULT must have: the command's, and any more the pipe was typed with. */
  relation: KqlColumn[];
  sql: string;
  columns: KqlColumn[];
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

const sameColumns = (a: readonly KqlColumn[], b: readonly KqlColumn[]) =>
  a.length === b.length && a.every((c, i) => c.name === b[i]!.name && c.type === b[i]!.type);

/**
 * The query that reads a command's result table: all of it, or what a KQL pipe after the
 * command makes of it (`.show tables | where ...`). The pipe was typed by the parser against
 * the parser's result type of the command; the table holds the columns Kusto's documentation
 * shows, which may differ (a column more or fewer). So:
 * - the relation holds both: the table's columns and every other one the parser knows,
 *   the latter empty when Spillway has no value for it (RoleAssignmentIdentifier);
 * - a pipe that reads or shows such a column is refused, never answered with an empty one;
 * - a pipe that only filters, sorts or limits rows (where, sort, take, top) keeps the table's
 *   own columns and order, so `| where` shows what the command alone shows.
 */
export function resultQuery(text: string, command: Command, result: ResultTable): ResultQuery {
  const own = [...result.columns, ...result.extra];
  if (!command.pipe) return { relation: own, sql: `SELECT ${result.columns.map((c) => quote(c.name)).join(", ")} FROM ${quote(COMMAND_RESULT)}`, columns: result.columns };
  const { pipe } = command;
  for (const c of pipe.inputColumns) {
    const mine = own.find((x) => x.name === c.name);
    // Both lists are this module's and Kusto.Language's: a disagreement is for a developer to settle.
    if (mine && mine.type !== c.type) throw new Error(`the result column ${c.name} is ${mine.type} here but ${c.type} to the parser`);
  }
  const absent = pipe.inputColumns.filter((c) => !own.some((x) => x.name === c.name));
  const relation = [...own, ...absent];
  const kept = keptRows(pipe.query, pipe.inputColumns, relation, result.columns);
  const columns = kept ? result.columns : pipe.columns;
  const read = columnsNamed(pipe.query);
  const missing = absent.find((c) => read.has(c.name) || columns.some((x) => x.name === c.name));
  if (missing) {
    throw invalidArgument(`Spillway keeps no ${missing.name} for this command's result; leave it out of the query after '|' (e.g. with project)`);
  }
  return { relation, sql: kept ? translate(text, kept) : translateCommandPipe(text, command)!.sql, columns };
}

/**
 * A pipe of where, sort, take and top only, over the command's result, rewritten to carry the
 * relation's columns through and to end with the table's own. Undefined for any other pipe.
 */
function keptRows(query: TabularExpr, input: KqlColumn[], relation: KqlColumn[], shown: KqlColumn[]): TabularExpr | undefined {
  const widen = (q: TabularExpr): TabularExpr | undefined => {
    if (!sameColumns(q.columns, input)) return undefined;
    switch (q.kind) {
      case "table":
        return q.name === COMMAND_RESULT ? { ...q, columns: relation } : undefined;
      case "where":
      case "sort":
      case "take":
      case "top": {
        const inner = widen(q.input);
        return inner && ({ ...q, input: inner, columns: relation } as TabularExpr);
      }
      default:
        return undefined;
    }
  };
  const widened = widen(query);
  return widened?.kind === "table" ? undefined : widened && ({ ...widened, columns: shown } as TabularExpr);
}

/** Every column name a query tree refers to, anywhere in it. */
function columnsNamed(query: TabularExpr): Set<string> {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      const n = node as Record<string, unknown>;
      if (n.kind === "column" && typeof n.name === "string") names.add(n.name);
      if (n.kind === "select" && Array.isArray(n.sources)) n.sources.forEach((s) => names.add(String(s)));
      if (Array.isArray(n.on)) for (const k of n.on as Array<{ left: string; right: string }>) names.add(k.left).add(k.right);
      Object.values(n).forEach(visit);
    }
  };
  visit(query);
  return names;
}
