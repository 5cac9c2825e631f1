import { quoteIdent } from "@spillway/duck";
import { internal, invalidArgument } from "@spillway/errors";
import { kqlSchemaOf, kustoJsonValue, renderColumnSql, sharedKqlEngine, type DescribedTable, type KqlColumn, type KqlEngine } from "@spillway/kql";
import type { ResultColumn } from "./query-engine.js";

/** What the engine streams for an ad-hoc query: the columns first, then batches of rows. */
export interface ResultBatch {
  columns?: ResultColumn[];
  rows?: unknown[][];
}

/** A KQL query translated for the query engine, and how its results read as Kusto's. */
export interface KqlQuery {
  /** One DuckDB SELECT naming tables as views are bound, each column rendered as Kusto's JSON text. */
  sql: string;
  /** The same SELECT with its values as typed, not rendered: what writing them somewhere reads. */
  typedSql: string;
  /** The tables it reads, as the catalog names them. */
  tables: string[];
  /** Its result columns with their Kusto types, as the parser typed them. */
  columns: KqlColumn[];
  /** The engine's batches with these columns and each value as Kusto's JSON shows it. */
  results(batches: AsyncIterable<ResultBatch>): AsyncIterable<ResultBatch>;
}

type TranslatesKql = Pick<KqlEngine, "translateQuery">;

/**
 * Translates a KQL query against the database's tables. The parser's refusals (syntax,
 * unknown names, what Spillway does not translate) are KqlErrors: INVALID_ARGUMENT with
 * the parser's code, line, column and message.
 */
export async function translateKqlQuery(
  text: string,
  database: string,
  tables: readonly DescribedTable[],
  kql: TranslatesKql = sharedKqlEngine(),
): Promise<KqlQuery> {
  if (!text.trim()) throw invalidArgument("query is required");
  const translated = await kql.translateQuery(text, kqlSchemaOf(database, tables));
  const columns = translated.columns;
  // DuckDB formats each value as Kusto writes it (datetimes ISO, timespans d.hh:mm:ss),
  // so the same KQL answers alike here and through KustoService/Execute.
  const rendered = columns.map((c) => `${renderColumnSql(c.name, c.type)} AS ${quoteIdent(c.name)}`);
  const sql = `SELECT ${rendered.join(", ")} FROM (${translated.sql}\n) AS __kusto`;
  return {
    sql,
    typedSql: translated.sql,
    tables: translated.tables,
    columns,
    async *results(batches) {
      for await (const batch of batches) {
        if (batch.columns) {
          const names = batch.columns.map((c) => c.name);
          // Translation names every column as the parser typed it; anything else is a translator bug.
          if (names.length !== columns.length || names.some((n, i) => n !== columns[i]!.name)) {
            throw internal(`the translated KQL query gave columns (${names.join(", ")}) instead of (${columns.map((c) => c.name).join(", ")})`);
          }
          yield { columns: columns.map((c) => ({ name: c.name, type: c.type })) };
        }
        if (batch.rows) yield { rows: batch.rows.map((row) => row.map((v, i) => kustoJsonValue(v === null ? null : String(v), columns[i]!.type))) };
      }
    },
  };
}
