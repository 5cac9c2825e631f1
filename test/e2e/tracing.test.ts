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

/** A minimal OTLP/HTTP JSON receiver: what a collector would get from each process. */
async function startCollector(): Promise<{ url: string; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const payload = JSON.parse(body || "{}") as {
        resourceSpans?: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: Array<{ traceId: string; name: string }> }>;
        }>;
      };
      for (const rs of payload.resourceSpans ?? []) {
        const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ service, traceId: s.traceId, name: s.name });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, server };
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
  });
});
