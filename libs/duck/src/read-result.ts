import type { DuckDBConnection, DuckDBMaterializedResult, DuckDBValue } from "@duckdb/node-api";

/** A result's rows, read whole. */
export interface ReadResult {
  getRows(): DuckDBValue[][];
  getRowObjects(): Record<string, DuckDBValue>[];
}

/**
 * The rows of a result DuckDB has materialized (what `run` answers), read from its chunks on
 * the spot. `runAndReadAll` fetches each chunk asynchronously, a trip through libuv's pool for
 * every chunk and one more to learn none is left: three trips for a one-row SELECT instead of
 * one, and under many runs at once each trip waits for a free thread (bench #3, #6).
 */
export function readMaterialized(result: DuckDBMaterializedResult): ReadResult {
  const chunks = Array.from({ length: result.chunkCount }, (_, i) => result.getChunk(i));
  return {
    getRows: () => chunks.flatMap((chunk) => chunk.getRows()),
    getRowObjects: () => {
      const names = result.deduplicatedColumnNames();
      const rows: Record<string, DuckDBValue>[] = [];
      for (const chunk of chunks) chunk.appendToRowObjects(names, rows);
      return rows;
    },
  };
}

/** Runs `sql` and reads its whole result (see readMaterialized). */
export async function runAndReadAll(connection: Pick<DuckDBConnection, "run">, sql: string): Promise<ReadResult> {
  return readMaterialized(await connection.run(sql));
}
