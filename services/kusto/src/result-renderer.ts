import { DuckDBInstance } from "@duckdb/node-api";
import { asUserQueryError, quoteIdent, quoteLiteral, runMaterialized } from "@spillway/duck";
import { COMMAND_RESULT, kustoJsonValue, renderColumnSql, type KqlColumn, type KustoJson } from "@spillway/kql";
import { KUSTO_TO_DUCKDB, type KustoType } from "@spillway/kusto";
import type { ResultQuery } from "./command-pipe.js";
import type { Cell, ResultTable } from "./result-table.js";

/** A result as it goes on the wire: its columns and each row's values as Kusto's JSON writes them. */
export interface RenderedTable {
  columns: KqlColumn[];
  rows: KustoJson[][];
}

function literal(value: Cell, type: KustoType): string {
  const duck = KUSTO_TO_DUCKDB[type];
  if (value === null || value === undefined) return `CAST(NULL AS ${duck})`;
  switch (type) {
    case "bool":
      return value ? "TRUE" : "FALSE";
    case "datetime":
      return `make_timestamp(CAST(${quoteLiteral(String(value))} AS BIGINT))`;
    case "timespan":
      return `to_microseconds(CAST(${quoteLiteral(String(value))} AS BIGINT))`;
    case "dynamic":
      return `CAST(${quoteLiteral(JSON.stringify(value))} AS JSON)`;
    default:
      return `CAST(${quoteLiteral(String(value))} AS ${duck})`;
  }
}

/**
 * Renders command results with DuckDB: the rows go into a typed table, a pipe after the
 * command runs on it as the SQL the KQL translator made of it, and DuckDB writes every value
 * as Kusto does (renderColumnSql), as a query's are, so `| where` compares typed values and a
 * long stays exact. One in-memory instance that may touch no file; each result gets its own
 * connection and a temporary table only that connection sees.
 */
export class ResultRenderer {
  private constructor(private readonly instance: DuckDBInstance) {}

  static async open(): Promise<ResultRenderer> {
    const instance = await DuckDBInstance.create(":memory:", {
      threads: "1",
      enable_external_access: "false",
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
    });
    const setup = await instance.connect();
    try {
      // Datetimes are UTC, as the query service computes them; then no statement may change a setting.
      await setup.run("SET TimeZone = 'UTC'");
      await setup.run("SET lock_configuration = true");
    } finally {
      setup.closeSync();
    }
    return new ResultRenderer(instance);
  }

  async render(result: ResultTable, query: ResultQuery): Promise<RenderedTable> {
    const connection = await this.instance.connect();
    try {
      const columns = query.relation;
      await connection.run(`CREATE TEMP TABLE ${quoteIdent(COMMAND_RESULT)} (${columns.map((c) => `${quoteIdent(c.name)} ${KUSTO_TO_DUCKDB[c.type]}`).join(", ")})`);
      if (result.rows.length) {
        const values = result.rows.map((row) => `(${columns.map((c) => literal(row[c.name] ?? null, c.type)).join(", ")})`);
        await connection.run(`INSERT INTO ${quoteIdent(COMMAND_RESULT)} VALUES ${values.join(", ")}`);
      }
      const rendered = `SELECT ${query.columns.map((c) => renderColumnSql(c.name, c.type)).join(", ")} FROM (${query.sql}) AS __pipe`;
      // What DuckDB refuses of a pipe's SQL (a conversion, say) is the query's to fix, as for a query.
      const reader = await runMaterialized(connection, rendered).catch((err: unknown) => Promise.reject(asUserQueryError(err)));
      const rows = reader.getRows().map((r) => r.map((v, i) => kustoJsonValue(v === null ? null : String(v), query.columns[i]!.type)));
      return { columns: query.columns, rows };
    } finally {
      connection.closeSync();
    }
  }

  close(): void {
    this.instance.closeSync();
  }
}
