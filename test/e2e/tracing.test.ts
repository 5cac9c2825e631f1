import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/free-port.js";
import { csv } from "../support/fixtures.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

interface ReceivedSpan {
  service: string;
  traceId: string;
  name: string;
}

interface ReceivedPoint {
  service: string;
  metric: string;
  attributes: Record<string, string>;
  value: number;
}

type OtlpAttributes = Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
type OtlpPoint = { attributes?: OtlpAttributes; asInt?: string | number; asDouble?: number; count?: string | number };

/** A minimal OTLP/HTTP JSON receiver: what a collector would get from each process, spans and metrics. */
async function startCollector(): Promise<{ url: string; spans: ReceivedSpan[]; points: ReceivedPoint[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const points: ReceivedPoint[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const payload = JSON.parse(body || "{}") as {
        resourceSpans?: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: Array<{ traceId: string; name: string }> }>;
        }>;
        resourceMetrics?: Array<{
          resource: { attributes: OtlpAttributes };
          scopeMetrics: Array<{ metrics: Array<{ name: string; sum?: { dataPoints: OtlpPoint[] }; gauge?: { dataPoints: OtlpPoint[] }; histogram?: { dataPoints: OtlpPoint[] } }> }>;
        }>;
      };
      for (const rm of payload.resourceMetrics ?? []) {
        const service = rm.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const sm of rm.scopeMetrics) {
          for (const m of sm.metrics) {
            for (const p of [...(m.sum?.dataPoints ?? []), ...(m.gauge?.dataPoints ?? []), ...(m.histogram?.dataPoints ?? [])]) {
              const attributes = Object.fromEntries((p.attributes ?? []).map((a) => [a.key, String(a.value.stringValue ?? a.value.intValue)]));
              points.push({ service, metric: m.name, attributes, value: Number(p.asInt ?? p.asDouble ?? p.count) });
            }
          }
        }
      }
      for (const rs of payload.resourceSpans ?? []) {
        const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ service, traceId: s.traceId, name: s.name });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, points, server };
}

describe("tracing across one process per module", () => {
  let sw: SpillwayUnderTest;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  // Outside the data dir, where file:// targets may not point (SPEC §7).
  let lake: string;
  beforeAll(async () => {
    lake = mkdtempSync(join(tmpdir(), "spillway-tracing-lake-"));
    collector = await startCollector();
    sw = await startSpillwayProcesses("split", {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_METRIC_EXPORT_INTERVAL: "500",
    });
  });
  afterAll(async () => {
    await sw?.stop();
    collector?.server.close();
    if (lake) rmSync(lake, { recursive: true, force: true });
  });

  it("makes one export run one trace spanning every service it touches", async () => {
    await sw.catalog.createTable({ name: "T", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createExternalTable({
      name: "X",
      kind: "blob",
      dataFormat: "csv",
      columns: [{ name: "Id", type: "long" }],
      connectionStrings: [`file://${lake}`],
    });
    await sw.catalog.createOrAlterContinuousExport({ name: "E", externalTable: "X", query: "SELECT Id FROM T", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await sw.query.ingest({ table: "T", format: "csv", payload: csv([[1], [2]]) });
    const run = await sw.catalog.runContinuousExportNow({ name: "E" });
    expect(run.result).toBe("Completed");

    const runNow = await waitFor("the RunContinuousExportNow span", async () =>
      collector.spans.find((s) => s.name === "spillway.catalog.v1.CatalogService/RunContinuousExportNow"),
    );
    const runSpan = await waitFor("the run span", async () =>
      collector.spans.find((s) => s.name === "continuous_export.run" && s.traceId === runNow.traceId),
    );
    const services = await waitFor("spans of every service in the run's trace", async () => {
      const inTrace = new Set(collector.spans.filter((s) => s.traceId === runSpan.traceId).map((s) => s.service));
      return inTrace.size >= 5 ? inTrace : undefined;
    });
    expect([...services].sort()).toEqual(["spillway-catalog", "spillway-cursor", "spillway-query", "spillway-scheduler", "spillway-writer"]);
    const names = collector.spans.filter((s) => s.traceId === runSpan.traceId).map((s) => `${s.service} ${s.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        "spillway-catalog spillway.catalog.v1.CatalogService/RunContinuousExportNow",
        "spillway-cursor spillway.cursor.v1.CursorService/RunExportNow",
        "spillway-scheduler continuous_export.run",
        "spillway-query spillway.query.v1.QueryService/ExecuteToSpool",
        "spillway-writer spillway.writer.v1.WriterService/StageArtifacts",
        "spillway-writer spillway.writer.v1.WriterService/UploadArtifacts",
      ]),
    );
    // The ingestion before it was a trace of its own.
    const ingest = await waitFor("the ingest span", async () => collector.spans.find((s) => s.name === "spillway.query.v1.QueryService/Ingest"));
    expect(ingest.traceId).not.toBe(runSpan.traceId);

    // The metrics go to the same collector over OTLP: the run's result from the scheduler, the ingestion from the query service.
    const result = await waitFor("the run's result over OTLP", async () =>
      collector.points.find((p) => p.metric === "continuous_export.result" && p.attributes.export === "E" && p.attributes.result === "Completed"),
    );
    expect(result).toMatchObject({ service: "spillway-scheduler", value: 1, attributes: { database: "default" } });
    const rows = await waitFor("the ingested rows over OTLP", async () => collector.points.find((p) => p.metric === "ingestion.rows" && p.attributes.table === "T"));
    expect(rows).toMatchObject({ service: "spillway-query", value: 2 });
  });
});
