import { metrics } from "@opentelemetry/api";
import { SECONDS_BUCKETS } from "@spillway/telemetry";
import { SpillwayError } from "@spillway/errors";

/**
 * Made on first use, not at import: the metrics API has no stand-in provider, so instruments
 * made before the SDK started would count into nothing.
 */
let instruments: ReturnType<typeof makeInstruments> | undefined;
function makeInstruments() {
  const meter = metrics.getMeter("spillway-query");
  return {
    calls: meter.createCounter("ingestion.calls", { description: "Ingest and IngestStream calls, by database, table and result (ok, refused)" }),
    rows: meter.createCounter("ingestion.rows", { description: "Rows ingested" }),
    bytes: meter.createCounter("ingestion.bytes", { unit: "By", description: "Bytes of the extents ingestion wrote (Parquet)" }),
    duration: meter.createHistogram("ingestion.duration", { unit: "s", description: "How long an ingestion call took, to its commit", advice: { explicitBucketBoundaries: SECONDS_BUCKETS } }),
  };
}

/** Runs one ingestion and counts it: its result, rows, bytes and time (SPEC §8). */
export async function measuredIngestion<T extends { rowCount: bigint; bytes: bigint }>(target: { database: string; table: string }, ingest: () => Promise<T>): Promise<T> {
  const { calls, rows, bytes, duration } = (instruments ??= makeInstruments());
  const t0 = performance.now();
  const labels = { database: target.database || "default", table: target.table };
  try {
    const done = await ingest();
    calls.add(1, { ...labels, result: "ok" });
    rows.add(Number(done.rowCount), labels);
    bytes.add(Number(done.bytes), labels);
    return done;
  } catch (err) {
    calls.add(1, { ...labels, result: "refused", code: SpillwayError.from(err).code });
    throw err;
  } finally {
    duration.record((performance.now() - t0) / 1000, labels);
  }
}
