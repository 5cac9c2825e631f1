import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { invalidArgument } from "@spillway/errors";
import { kustoTypeOfDuckDb } from "@spillway/kusto";
import { openSandboxedInstance } from "./sandbox.js";
import type { QueryShape } from "./query-shape.js";
import { CURSOR_COLUMN, FILE_COLUMN, withoutCursorColumns } from "./cursor-functions.js";
import { bindQueryTables } from "./table-binding.js";
import { runMaterialized } from "./read-result.js";

export interface DescribedColumn {
  name: string;
  /** The Kusto type where one maps, else DuckDB's type name in lower case. */
  type: string;
}

export interface TableSchema {
  name: string;
  columns: Array<{ name: string; type: string }>;
  /** Its rows carry cursors, which cursor functions read. */
  ingestionTimePolicy?: boolean;
}

/** A column of a query's result, typed as Kusto names it where it can. */
export function describedColumn(name: string, duckType: string): DescribedColumn {
  return { name, type: kustoTypeOfDuckDb(duckType) ?? duckType.toLowerCase() };
}

/**
 * Checks a query and tells its output columns and the tables it reads, from the tables'
 * schemas alone: no data is read, so whoever defines queries (the catalog, creating an
 * export) can check them without the service that runs them. DuckDB binds the query
 * against empty views of the tables in an in-memory instance that may touch no file.
 */
export class QueryDescriber {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly scratch: string,
  ) {}

  static async open(): Promise<QueryDescriber> {
    const scratch = await mkdtemp(join(tmpdir(), "spillway-describe-"));
    return new QueryDescriber(await openSandboxedInstance([], scratch, { threads: 1, memoryLimit: "256MB" }), scratch);
  }

  async close(): Promise<void> {
    this.instance.closeSync();
    await rm(this.scratch, { recursive: true, force: true });
  }

  private aggregateNames: Promise<ReadonlySet<string>> | undefined;

  /** DuckDB's aggregate functions by name (lower case): what tells an aggregate call from a scalar one in a query's shape. */
  aggregates(): Promise<ReadonlySet<string>> {
    this.aggregateNames ??= (async () => {
      const connection = await this.instance.connect();
      try {
        const rows = await runMaterialized(connection, "SELECT DISTINCT lower(function_name) AS name FROM duckdb_functions() WHERE function_type = 'aggregate'");
        return new Set(rows.getRowObjects().map((r) => String(r.name)));
      } finally {
        connection.closeSync();
      }
    })();
    return this.aggregateNames;
  }

  async describe(query: string, tables: TableSchema[]): Promise<{ columns: DescribedColumn[]; tables: string[]; shape: QueryShape }> {
    const connection = await this.instance.connect();
    try {
      const bound = await bindQueryTables(connection, query, tables.map((t) => ({ ...t, extentFiles: [], cursors: t.ingestionTimePolicy ? [] : undefined })));
      const described = await runMaterialized(connection, `DESCRIBE (${bound.cursorColumn ? withoutCursorColumns(bound.sql) : bound.sql}\n)`).catch((err: unknown) => {
        throw asUserQueryError(err);
      });
      return {
        columns: described.getRowObjects().map((r) => describedColumn(String(r.column_name), String(r.column_type))),
        tables: bound.tables,
        shape: bound.shape,
      };
    } finally {
      connection.closeSync();
    }
  }
}

/** DuckDB binder and parser errors are the user's to fix: INVALID_ARGUMENT with DuckDB's words. */
export function asUserQueryError(err: unknown): unknown {
  if (!(err instanceof Error) || "code" in err) return err;
  const m = /^(Binder|Parser|Catalog|Conversion|Invalid Input|Permission|Not implemented|Out of Range) Error: ([\s\S]*)$/.exec(err.message);
  // The message proper: the lines after it quote the statement, which names the cursor columns whenever cursor functions are called.
  const said = m?.[2]!.split("\n")[0] ?? "";
  if (said.includes(CURSOR_COLUMN) || said.includes(FILE_COLUMN)) {
    // The column is Spillway's, not the user's: say what to write instead.
    return invalidArgument(
      /ambiguous/i.test(said)
        ? "cursor functions read one table's cursors, and this query reads several where they are called: filter that table in a subquery first, e.g. FROM (SELECT * FROM T WHERE cursor_after('…')) AS t JOIN …"
        : "cursor functions read the cursors of the table they filter: call them where that table's rows are (its WHERE, before a projection or an aggregation)",
    );
  }
  return m ? invalidArgument(`query failed: ${said}`) : err;
}
