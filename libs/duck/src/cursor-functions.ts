import { invalidArgument } from "@spillway/errors";
import { cursorText, RESERVED_COLUMN_PREFIX, UNIX_EPOCH_TICKS } from "@spillway/kusto";
import { quoteLiteral } from "./sql-text.js";

/**
 * The column of a bound table that holds each row's cursor (its extent's), present only
 * when a query uses cursor functions, and never part of what a query returns.
 */
export const CURSOR_COLUMN = `${RESERVED_COLUMN_PREFIX}cursor`;
/** The column of a bound table that holds each row's file (extent), which cursor filters name. */
export const FILE_COLUMN = `${RESERVED_COLUMN_PREFIX}file`;
const COLUMN = `"${CURSOR_COLUMN}"`;
const FILE = `"${FILE_COLUMN}"`;

/** The extent files of the tables a query reads, with their cursors: what a cursor filter selects from. */
export type CursorFiles = ReadonlyArray<{ file: string; cursor: bigint }>;

const ARITY: Record<string, number> = { cursor_after: 1, cursor_before_or_at: 1, cursor_current: 0, ingestion_time: 0 };

/** One call of a cursor function in a query: where it starts (a UTF-8 byte offset, as DuckDB's parser counts) and its constant arguments. */
export interface CursorCall {
  name: string;
  location: number;
  /** Each argument's value when it is a string constant; undefined when it is anything else. */
  args: Array<string | undefined>;
}

/** The cursor-function calls of a query, from DuckDB's parse tree (json_serialize_sql) of its statement. */
export function cursorCalls(statement: unknown): CursorCall[] {
  const calls: CursorCall[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== "object") return;
    const node = value as Record<string, unknown>;
    const name = node.class === "FUNCTION" ? String(node.function_name).toLowerCase() : "";
    if (name in ARITY) {
      const children = (node.children as Array<Record<string, unknown>>) ?? [];
      calls.push({
        name,
        location: Number(node.query_location),
        args: children.map((c) => {
          const constant = c.class === "CONSTANT" ? (c.value as { type?: { id?: string }; is_null?: boolean; value?: unknown }) : undefined;
          return constant?.type?.id === "VARCHAR" && !constant.is_null ? String(constant.value) : undefined;
        }),
      });
    }
    Object.values(node).forEach(visit);
  };
  visit(statement);
  return calls;
}

/** `sql`'s result without the cursor columns its tables got for cursor functions: what the caller asked for. */
export function withoutCursorColumns(sql: string): string {
  return `SELECT COLUMNS(lambda c: NOT starts_with(c, '${RESERVED_COLUMN_PREFIX}')) FROM (${sql}\n) AS q`;
}

/** Whether the calls read rows' cursors (all but cursor_current do). */
export const readsRowCursors = (calls: CursorCall[]) => calls.some((c) => c.name !== "cursor_current");

/**
 * The query with each cursor-function call replaced by the SQL it stands for: the current
 * cursor as a string, the row's ingestion time, or for a cursor filter the list of the extent
 * files it keeps, compared with the row's file: a filter on the file name is one DuckDB
 * applies to the file list, so the extents it rules out are not read at all. Files are each
 * one table's, so one list serves whichever table the call filters.
 */
export function rewriteCursorFunctions(query: string, calls: CursorCall[], current: bigint, files: CursorFiles = []): string {
  let bytes = Buffer.from(query, "utf8");
  for (const call of [...calls].sort((a, b) => b.location - a.location)) {
    if (call.args.length !== ARITY[call.name]) {
      throw invalidArgument(`${call.name}() takes ${ARITY[call.name] === 0 ? "no argument" : "one argument, a cursor as a string literal"}, got ${call.args.length}`);
    }
    const end = callEnd(bytes, call.location, call.name);
    bytes = Buffer.concat([bytes.subarray(0, call.location), Buffer.from(replacement(call, current, files)), bytes.subarray(end)]);
  }
  return bytes.toString("utf8");
}

function replacement(call: CursorCall, current: bigint, files: CursorFiles): string {
  switch (call.name) {
    case "cursor_current":
      return `'${cursorText(current)}'`;
    case "ingestion_time":
      return `make_timestamp((${COLUMN} - ${UNIX_EPOCH_TICKS}) // 10)`;
    default: {
      const bound = cursorArgument(call);
      const kept = files.filter((f) => (call.name === "cursor_after" ? f.cursor > bound : f.cursor <= bound)).map((f) => quoteLiteral(f.file));
      // No file kept: a comparison with NULL keeps no row (and still names the column, so its table is checked).
      return `(${FILE} IN (${kept.length ? kept.join(", ") : "NULL"}))`;
    }
  }
}

/** A cursor argument: a string of digits, or '' for the beginning of time. */
function cursorArgument(call: CursorCall): bigint {
  const text = call.args[0];
  if (text === undefined) throw invalidArgument(`${call.name}() takes a cursor as a string literal, such as '${cursorText(638000000000000000n)}' (an export's startCursor, or what cursor_current() gave)`);
  if (text === "") return 0n;
  if (!/^\d{1,19}$/.test(text.trim())) throw invalidArgument(`${call.name}(): '${text}' is not a cursor; a cursor is a string of digits, as cursor_current() or an export's startCursor gives it, or '' for the beginning`);
  return BigInt(text.trim());
}

/**
 * The byte offset just past the call that starts at `start` (its name, then its parenthesised
 * arguments): strings, quoted names and comments inside it are skipped whole, read as DuckDB's
 * parser reads them (block comments nest, a line comment ends at either line break, E'' strings
 * take backslash escapes, $tag$ strings end at their tag). Where this reading and DuckDB's could
 * still differ, the rewritten query is checked again before it runs (table-binding.ts).
 */
function callEnd(sql: Buffer, start: number, name: string): number {
  let i = start + name.length;
  if (sql.subarray(start, i).toString("utf8").toLowerCase() !== name) throw invalidArgument(`could not find ${name}() at byte ${start} of the query`);
  while (i < sql.length && /\s/.test(String.fromCharCode(sql[i]!))) i++;
  if (sql[i] !== 0x28) throw invalidArgument(`could not read the arguments of ${name}()`);
  let depth = 0;
  for (; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === 0x27 || ch === 0x22) {
      // A quoted string or name: to its closing quote (a doubled quote is one quote inside;
      // in an E'' string, a backslash escapes the character after it).
      const escapes = ch === 0x27 && (sql[i - 1] === 0x45 || sql[i - 1] === 0x65) && !isWordByte(sql[i - 2]);
      for (i++; i < sql.length; i++) {
        if (escapes && sql[i] === 0x5c) i++;
        else if (sql[i] === ch) {
          if (sql[i + 1] === ch) i++;
          else break;
        }
      }
    } else if (ch === 0x24 && !isWordByte(sql[i - 1])) {
      // A dollar-quoted string ($$…$$ or $tag$…$tag$); a $ not opening one ($1) is passed.
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.subarray(i, i + 64).toString("latin1"))?.[0];
      if (tag) {
        const close = sql.indexOf(tag, i + tag.length);
        i = close < 0 ? sql.length : close + tag.length - 1;
      }
    } else if (ch === 0x2d && sql[i + 1] === 0x2d) {
      while (i < sql.length && sql[i] !== 0x0a && sql[i] !== 0x0d) i++;
    } else if (ch === 0x2f && sql[i + 1] === 0x2a) {
      i = blockCommentEnd(sql, i);
    } else if (ch === 0x28) {
      depth++;
    } else if (ch === 0x29 && --depth === 0) {
      return i + 1;
    }
  }
  throw invalidArgument(`the call of ${name}() is not closed`);
}

/** The offset of the last byte of the block comment opening at `open`, comments nested in it included. */
function blockCommentEnd(sql: Buffer, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length - 1; i++) {
    if (sql[i] === 0x2f && sql[i + 1] === 0x2a) {
      depth++;
      i++;
    } else if (sql[i] === 0x2a && sql[i + 1] === 0x2f) {
      i++;
      if (--depth === 0) return i;
    }
  }
  return sql.length;
}

function isWordByte(b: number | undefined): boolean {
  return b !== undefined && (b === 0x5f || (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b >= 0x80);
}
