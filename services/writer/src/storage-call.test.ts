import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metrics } from "@opentelemetry/api";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { ErrorCode } from "@spillway/errors";
import { storageCall } from "./storage-call.js";

describe("storageCall", () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const provider = new MeterProvider({ readers: [reader] });
  beforeAll(() => metrics.setGlobalMeterProvider(provider));
  afterAll(async () => {
    await provider.shutdown();
    metrics.disable();
  });

  it("turns storage failures into domain errors and counts each by kind", async () => {
    const failing = (e: object) => storageCall(() => Promise.reject(Object.assign(new Error("storage said no"), e)));
    await expect(failing({ statusCode: 503 })).rejects.toMatchObject({ code: ErrorCode.unavailable });
    await expect(failing({ statusCode: 503 })).rejects.toMatchObject({ code: ErrorCode.unavailable });
    await expect(failing({ statusCode: 403, code: "AuthorizationFailure" })).rejects.toMatchObject({ code: ErrorCode.permissionDenied });
    await expect(failing({ statusCode: 404, code: "ContainerNotFound" })).rejects.toMatchObject({ code: ErrorCode.failedPrecondition });
    await expect(failing({ code: "ECONNRESET" })).rejects.toMatchObject({ code: ErrorCode.unavailable });
    expect(await storageCall(async () => "fine")).toBe("fine");

    await reader.forceFlush();
    const points = exporter
      .getMetrics()
      .at(-1)!
      .scopeMetrics.flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === "storage.errors")
      .flatMap((m) => m.dataPoints.map((p) => [p.attributes.kind, p.value]));
    expect(Object.fromEntries(points)).toEqual({ http_503: 2, http_403: 1, http_404: 1, ECONNRESET: 1 });
  });
});
