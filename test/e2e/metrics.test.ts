import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { csv, newContainer, refusal } from "../support/fixtures.js";
import { sample, scrape } from "../support/prometheus-scrape.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("metrics on the Prometheus endpoint (SPEC §8)", () => {
  let azurite: Azurite;
  let sw: SpillwayUnderTest;
  let url: string;

  beforeAll(async () => {
    azurite = await useAzurite();
    sw = await startSpillwayProcesses("all");
    // The process says where its scrape endpoint is (it took a port of its own).
    url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(sw.output())![1]!;
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
  });

  it("shows lateness rising while an export is held back and gone after its run, its results and what ingestion did", async () => {
    const container = await newContainer(azurite, "metrics");
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "parquet", columns: [{ name: "Id", type: "long" }], connectionStrings: [azurite.connectionString(container)] });
    // An hour between runs: the export is held back until it is run now.
    await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    const out = { database: "default", export: "Out" };

    let m = await scrape(url);
    expect(sample(m, "continuous_export_lateness", out)).toBe(0);
    expect(sample(m, "continuous_export_lateness_records", out)).toBe(0);

    await sw.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 7 }, (_, i) => [i])) });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 5 }, (_, i) => [i + 7])) });
    await refusal(sw.query.ingest({ table: "Events", format: "csv", payload: csv([["not a number"]]) }));
    await sleep(1200);
    m = await scrape(url);
    const first = sample(m, "continuous_export_lateness", out)!;
    expect(first).toBeGreaterThanOrEqual(1);
    expect(sample(m, "continuous_export_max_lateness")).toBeGreaterThanOrEqual(first);
    // Records lateness: the rows ingested and not yet exported.
    expect(sample(m, "continuous_export_lateness_records", out)).toBe(12);
    expect(sample(m, "ingestion_calls_total", { table: "Events", result: "ok" })).toBe(2);
    expect(sample(m, "ingestion_calls_total", { table: "Events", result: "refused" })).toBe(1);
    expect(sample(m, "ingestion_rows_total", { table: "Events" })).toBe(12);

    await sleep(1000);
    m = await scrape(url);
    expect(sample(m, "continuous_export_lateness", out)).toBeGreaterThan(first);

    const run = await sw.catalog.runContinuousExportNow({ name: "Out" });
    expect(run.result).toBe("Completed");
    expect((await sw.catalog.runContinuousExportNow({ name: "Out" })).result).toBe("Completed");
    m = await scrape(url);
    expect(sample(m, "continuous_export_lateness", out)).toBe(0);
    expect(sample(m, "continuous_export_max_lateness")).toBe(0);
    expect(sample(m, "continuous_export_lateness_records", out)).toBe(0);
    // One result per run made, by export and result; what the committed runs wrote.
    expect(sample(m, "continuous_export_result_total", { ...out, result: "Completed" })).toBe(2);
    expect(sample(m, "continuous_export_result_total", { ...out, result: "Failed" })).toBeUndefined();
    expect(sample(m, "continuous_export_records_total", out)).toBe(12);
    expect(sample(m, "continuous_export_bytes_total", out)).toBe(run.artifacts.reduce((n, a) => n + Number(a.sizeInBytes), 0));
    // Two runs timed (the parser keeps a histogram's buckets but not its labels, as OpenTelemetry writes _count before _bucket).
    expect(m.get("continuous_export_run_duration")?.metrics.map((x) => x.buckets?.["+Inf"])).toEqual(["2"]);
  });
});
