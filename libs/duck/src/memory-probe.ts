import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";

/**
 * DuckDB's memory in use in an instance (its buffer manager's, by duckdb_memory()), read on a
 * connection of its own so a probe never waits behind the query it measures.
 */
export class DuckdbMemoryProbe {
  private connecting?: Promise<DuckDBConnection>;
  private connection?: DuckDBConnection;
  private closed = false;

  constructor(private readonly instance: DuckDBInstance) {}

  /** Bytes in use now (0 once closed). */
  readonly read = async (): Promise<bigint> => {
    if (this.closed) return 0n;
    this.connecting ??= this.instance.connect().then(
      (c) => {
        // Closed while connecting: this connection is not kept.
        if (this.closed) c.closeSync();
        else this.connection = c;
        return c;
      },
      (err: unknown) => {
        // The next read tries to connect again.
        this.connecting = undefined;
        throw err;
      },
    );
    const connection = await this.connecting;
    if (this.closed) return 0n;
    const reader = await connection.runAndReadAll("SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()");
    return reader.getRows()[0]![0] as bigint;
  };

  /** Closes its connection, before the instance closes. */
  close(): void {
    this.closed = true;
    this.connection?.closeSync();
    this.connection = undefined;
  }
}
