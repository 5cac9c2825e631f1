import { NodeSDK } from "@opentelemetry/sdk-node";
import { OTLPMetricExporter as OtlpGrpcMetrics } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPMetricExporter as OtlpHttpJsonMetrics } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as OtlpProtoMetrics } from "@opentelemetry/exporter-metrics-otlp-proto";
import { PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { NoopSpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK for this process, configured by the standard OTEL_*
 * variables. Without an exporter configured, spans are still created (so trace ids
 * exist and propagate across services) but sent nowhere.
 */
export function startTelemetry(defaultServiceName: string, options: { metricReaders?: MetricReader[] } = {}, env: NodeJS.ProcessEnv = process.env): Telemetry {
  if (env.OTEL_SDK_DISABLED === "true") return { shutdown: async () => {} };
  const exporterConfigured = Boolean(
    env.OTEL_TRACES_EXPORTER || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  );
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME || defaultServiceName,
    instrumentations: [],
    ...(exporterConfigured ? {} : { spanProcessors: [new NoopSpanProcessor()] }),
    metricReaders: [...(options.metricReaders ?? []), ...otlpMetricReaders(env)],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}

/**
 * Metrics over OTLP when the standard variables ask for them (an OTLP endpoint, or
 * OTEL_METRICS_EXPORTER=otlp), in the protocol they name; none otherwise, where the SDK's
 * default would push to localhost:4318 every minute whether or not anything listens.
 */
function otlpMetricReaders(env: NodeJS.ProcessEnv): MetricReader[] {
  const asked = (env.OTEL_METRICS_EXPORTER ?? "").split(",").map((e) => e.trim());
  if (asked.includes("none")) return [];
  if (!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT || asked.includes("otlp"))) return [];
  const protocol = env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf";
  const exporter = protocol === "grpc" ? new OtlpGrpcMetrics() : protocol === "http/json" ? new OtlpHttpJsonMetrics() : new OtlpProtoMetrics();
  return [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: Number(env.OTEL_METRIC_EXPORT_INTERVAL) || 60_000 })];
}
