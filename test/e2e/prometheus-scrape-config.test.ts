import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stopChild } from "../support/child-process.js";
import { csv } from "../support/fixtures.js";
import { freePort, waitFor } from "../support/free-port.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

/** The README's scrape config, as written. */
function readmeScrapeConfig(): string {
  const readme = readFileSync(join(process.cwd(), "README.md"), "utf8");
  const monitoring = readme.slice(readme.indexOf("### Monitoring"), readme.indexOf("### CLI"));
  return /```yaml\n([\s\S]*?)```/.exec(monitoring)![1]!;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe("Prometheus (Debian's prometheus) scraping Spillway with the README's config", () => {
  let sw: SpillwayUnderTest;
  let prometheus: ChildProcess;
  let prometheusUrl: string;
  let dir: string;
  let lake: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "spillway-prometheus-"));
    lake = mkdtempSync(join(tmpdir(), "spillway-prometheus-lake-"));
    sw = await startSpillwayProcesses("all");
    const metrics = /metrics on http:\/\/(127\.0\.0\.1:\d+)\/metrics/.exec(sw.output())![1]!;
    // The only change: the test's process took a port of its own, not the default 9464.
    const config = readmeScrapeConfig().replace("127.0.0.1:9464", metrics);
    expect(config).toContain(metrics);
    writeFileSync(join(dir, "prometheus.yml"), config);
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
    await waitFor("prometheus to be ready", async () => ((await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined));
  });
  afterAll(async () => {
    if (prometheus) await stopChild(prometheus);
    await sw?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(lake, { recursive: true, force: true });
  });

  const query = async (expr: string): Promise<Sample[]> => {
    const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; data: { result: Sample[] } };
    expect(body.status).toBe("success");
    return body.data.result;
  };

  it("collects the run results and lateness of an export, labelled by export", async () => {
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}`] });
    await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2], [3]]) });
    expect((await sw.catalog.runContinuousExportNow({ name: "Out" })).result).toBe("Completed");
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[4], [5]]) });

    // Scrapes every 15 s as written, the first within one interval of the start.
    const results = await waitFor("a scrape with the run's result", async () => {
      const found = await query('continuous_export_result_total{job="spillway"}');
      return found.length ? found : undefined;
    }, 45_000);
    expect(results).toEqual([expect.objectContaining({ metric: expect.objectContaining({ database: "default", export: "Out", result: "Completed" }), value: [expect.any(Number), "1"] })]);
    expect((await query('up{job="spillway"}'))[0]!.value[1]).toBe("1");
    expect((await query('continuous_export_lateness_records{export="Out"}'))[0]!.value[1]).toBe("2");
    expect(Number((await query("continuous_export_max_lateness"))[0]!.value[1])).toBeGreaterThanOrEqual(0);

    // The README's alert expressions are valid PromQL over these metrics, and quiet while all is well.
    const readme = readFileSync(join(process.cwd(), "README.md"), "utf8");
    const alerts = [...readme.slice(readme.indexOf("Then, for example,"), readme.indexOf("Lateness differs from Kusto's")).matchAll(/`([^`]*continuous_export[^`]*)`/g)].map((m) => m[1]!);
    expect(alerts).toHaveLength(2);
    for (const alert of alerts) expect(await query(alert)).toEqual([]);
    // Without its threshold, the lateness alert finds the export's series: it looks at real data.
    expect(await query(alerts[0]!.replace(/ > \d+$/, ""))).toHaveLength(1);

    // Runs that fail make the failure alert fire for their export (an increase needs two scrapes of the counter).
    await sw.catalog.createTable({ name: "Other", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createOrAlterContinuousExport({ name: "Broken", externalTable: "Lake", query: "SELECT Id FROM Other", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await sw.catalog.setIngestionTimePolicy({ table: "Other", enabled: false });
    const fail = async () => expect((await sw.catalog.runContinuousExportNow({ name: "Broken" })).result).toBe("Failed");
    await fail();
    await waitFor("a scrape of the first failure", async () => ((await query('continuous_export_result_total{result="Failed"}')).length ? true : undefined), 45_000);
    await fail();
    const firing = await waitFor("the failure alert", async () => {
      const found = await query(alerts[1]!);
      return found.length ? found : undefined;
    }, 45_000);
    expect(firing.map((s) => s.metric.export)).toEqual(["Broken"]);
  });
});
