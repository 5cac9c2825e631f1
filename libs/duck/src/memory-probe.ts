import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";

/**
 * DuckDB's memory in use in an instance (its buffer manager's, by duckdb_memory()), read on a
 * connection of its own so a probe never waits behind the query it measures.
 */
export class DuckdbMemoryProbe {
  private connection?: Promise<DuckDBConnection>;
  private opened?: DuckDBConnection;

  constructor(private readonly instance: DuckDBInstance) {}

  /** Bytes in use now. */
  readonly read = async (): Promise<bigint> => {
    this.connection ??= this.instance.connect().then((c) => (this.opened = c));
    const reader = await (await this.connection).runAndReadAll("SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()");
    return reader.getRows()[0]![0] as bigint;
  };

  /** Closes its connection, before the instance closes. */
  close(): void {
    this.opened?.closeSync();
  }
}
