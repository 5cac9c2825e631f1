import type { JsonValue } from "@bufbuild/protobuf";
import type { KqlColumn } from "@spillway/kql";
import type { KustoType } from "@spillway/kusto";

/**
 * A value of a result table, held as its column's type says: bool as boolean, int and real
 * as number, long as bigint, decimal and guid and string as text, datetime and timespan as
 * bigint microseconds (since the Unix epoch / of duration), dynamic as a JSON value. Kusto's
 * strings are never null: an absent string is "".
 */
export type Cell = null | boolean | number | bigint | string | JsonValue;

/** What a command answers, before a pipe (`| where ...`) and before rendering. */
export interface ResultTable {
  /** The command's result columns, named, typed and ordered as Kusto's documentation shows them. */
  columns: KqlColumn[];
  /**
   * Columns the parser's result type of the command has beyond `columns` (e.g. Schema of
   * `.alter external table`): a pipe typed by the parser may read them.
   */
  extra: KqlColumn[];
  /** Values by column name, for `columns` and `extra`. */
  rows: Array<Record<string, Cell>>;
}

export const col = (name: string, type: KustoType = "string"): KqlColumn => ({ name, type });
