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
  // A streaming result counts no chunks: it would read as empty rather than fail.
  if (result.isStreaming) throw new Error("readMaterialized: the result is streaming; read it with fetchChunk");
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

/** Runs `sql` and reads its whole result (see readMaterialized): node-api's `runAndReadAll` in one trip. */
export async function runMaterialized(connection: Pick<DuckDBConnection, "run">, sql: string): Promise<ReadResult> {
  return readMaterialized(await connection.run(sql));
}
