import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { runMaterialized } from "./read-result.js";

/**
 * How old a reading may be and still answer a probe (see DuckdbMemoryProbe): less than the
 * 250 ms between a measured call's samples (libs/telemetry measured), so each of its samples
 * is a reading of its own; calls starting within it share one (bench #6: runs side by side).
 */
export const FRESH_READING_MS = 200;

/**
 * DuckDB's memory in use in an instance (its buffer manager's, by duckdb_memory()), read on a
 * connection of its own so a probe never waits behind the query it measures. Probes share
 * readings: one under way answers every probe asked meanwhile, and one less than
 * FRESH_READING_MS old answers at once. Each measured call probes as it starts and every 250 ms
 * (libs/telemetry measured), and a reading is a query of its own: with runs side by side, they
 * were the process's most frequent DuckDB statement (bench #6).
 */
export class DuckdbMemoryProbe {
  private connecting?: Promise<DuckDBConnection>;
  private connection?: DuckDBConnection;
  private closed = false;
  private reading?: Promise<bigint>;
  private last?: { at: number; bytes: bigint };

  constructor(
    private readonly instance: Pick<DuckDBInstance, "connect">,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Bytes in use now, or as read less than FRESH_READING_MS ago (0 once closed). */
  readonly read = async (): Promise<bigint> => {
    if (this.closed) return 0n;
    if (this.last && this.now() - this.last.at < FRESH_READING_MS) return this.last.bytes;
    // Its age counts from when it was asked: a slow reading is not fresh for longer.
    const at = this.now();
    this.reading ??= this.readNow().then(
      (bytes) => {
        this.last = { at, bytes };
        return bytes;
      },
      (err: unknown) => {
        this.last = undefined;
        throw err;
      },
    ).finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  };

  private async readNow(): Promise<bigint> {
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
    const reader = await runMaterialized(connection, "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()");
    return reader.getRows()[0]![0] as bigint;
  }

  /** Closes its connection, before the instance closes. */
  close(): void {
    this.closed = true;
    this.connection?.closeSync();
    this.connection = undefined;
  }
}
