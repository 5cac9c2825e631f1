import { metrics } from "@opentelemetry/api";
import { SECONDS_BUCKETS } from "@spillway/telemetry";
import { latenessSeconds } from "@spillway/kusto";
import type { ExportSpec } from "@spillway/proto";
import type { RunOutcome } from "./export-runner.js";
import type { SchedulerPeers } from "./peer-clients.js";

// Asked for when instruments are made, not at import: the metrics API has no stand-in
// provider, so a meter taken before the SDK started would count into nothing.
const meterOf = () => metrics.getMeter("spillway-scheduler");

/**
 * The seed's "Continuous export result" (SPEC §8) and what each run wrote: counted when a
 * run ends, by database, export and result.
 */
export class RunMetrics {
  private readonly meter = meterOf();
  private readonly results = this.meter.createCounter("continuous_export.result", { description: "Runs of each continuous export that ended, by result (Completed, Failed)" });
  private readonly duration = this.meter.createHistogram("continuous_export.run.duration", { unit: "s", description: "How long runs took, from opening to commit or failure", advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
  private readonly records = this.meter.createCounter("continuous_export.records", { description: "Records written by committed runs" });
  private readonly bytes = this.meter.createCounter("continuous_export.bytes", { unit: "By", description: "Bytes of artifacts written by committed runs" });

  recordRun(spec: ExportSpec, outcome: RunOutcome, seconds: number): void {
    const labels = { database: spec.database, export: spec.name };
    this.results.add(1, { ...labels, result: outcome.result });
    this.duration.record(seconds, { ...labels, result: outcome.result });
    if (outcome.result !== "Completed") return;
    this.records.add(Number(outcome.artifacts.reduce((n, a) => n + a.numRecords, 0n)), labels);
    this.bytes.add(Number(outcome.artifacts.reduce((n, a) => n + a.sizeBytes, 0n)), labels);
  }
}

/**
 * The seed's "Continuous export max lateness" and lateness per export, read whenever metrics
 * are collected (a scrape, an OTLP export), from each export's backlog in the ledger. Lateness
 * is how long the oldest record not yet exported has waited since it was ingested, 0 when
 * there is none: unlike Kusto's (the age of ExportedTo), an export that is caught up on a
 * quiet table is not late. The backlog in records is there too, which Kusto does not have.
 */
export function observeExports(
  peers: Pick<SchedulerPeers, "catalog" | "cursor">,
  runner: { readonly runningCount: number },
  scheduler: { readonly waitingCount: number },
  now: () => number = Date.now,
): void {
  const meter = meterOf();
  const lateness = meter.createObservableGauge("continuous_export.lateness", { unit: "s", description: "Seconds the oldest record not yet exported has waited, per export (0 when caught up)" });
  const maxLateness = meter.createObservableGauge("continuous_export.max_lateness", { unit: "s", description: "The largest lateness of all enabled exports" });
  const backlog = meter.createObservableGauge("continuous_export.lateness.records", { description: "Records ingested into an export's fact tables and not yet exported" });
  const inFlight = meter.createObservableGauge("continuous_export.runs_in_flight", { description: "Runs this scheduler has under way" });
  const waiting = meter.createObservableGauge("continuous_export.runs_waiting", { description: "Exports due that wait for room under the capacity limit (SPILLWAY_MAX_CONCURRENT_RUNS)" });
  meter.addBatchObservableCallback(
    async (result) => {
      result.observe(inFlight, runner.runningCount);
      result.observe(waiting, scheduler.waitingCount);
      const { specs } = await peers.catalog.listExportSpecs({});
      const enabled = specs.filter((s) => !s.isDisabled);
      if (enabled.length === 0) return;
      const { backlogs } = await peers.cursor.getExportBacklogs({ exports: enabled.map((s) => ({ exportId: s.id, database: s.database, factTables: s.factTables })) });
      const byId = new Map(backlogs.map((b) => [b.exportId, b]));
      let max = 0;
      for (const spec of enabled) {
        const b = byId.get(spec.id);
        const labels = { database: spec.database, export: spec.name };
        const seconds = latenessSeconds(b?.oldestCursor, now());
        max = Math.max(max, seconds);
        result.observe(lateness, seconds, labels);
        result.observe(backlog, Number(b?.records ?? 0n), labels);
      }
      result.observe(maxLateness, max);
    },
    [lateness, maxLateness, backlog, inFlight, waiting],
  );
}
