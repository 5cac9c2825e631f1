import { NodeSDK } from "@opentelemetry/sdk-node";
import { NoopSpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK for this process, configured by the standard OTEL_*
 * variables. Without an exporter configured, spans are still created (so trace ids
 * exist and propagate across services) but sent nowhere.
 */
export function startTelemetry(defaultServiceName: string, env: NodeJS.ProcessEnv = process.env): Telemetry {
  if (env.OTEL_SDK_DISABLED === "true") return { shutdown: async () => {} };
  const exporterConfigured = Boolean(
    env.OTEL_TRACES_EXPORTER || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  );
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME || defaultServiceName,
    instrumentations: [],
    ...(exporterConfigured ? {} : { spanProcessors: [new NoopSpanProcessor()] }),
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
