import { ConfigError, loadConfig } from "@spillway/config";
import { leaveOldGenerationHeadroom } from "@spillway/rpc";
import { MetricsEndpoint, startTelemetry } from "@spillway/telemetry";
import { startSpillway } from "./spillway-app.js";

/** `spillway [--target=all|catalog|query|cursor|writer] [--listen=...] [--data-dir=...] ...` */
export async function main(argv: string[], defaultTarget?: string): Promise<void> {
  leaveOldGenerationHeadroom();
  let config;
  try {
    config = loadConfig(defaultTarget && !argv.some((a) => a.startsWith("--target")) ? [`--target=${defaultTarget}`, ...argv] : argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`spillway: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const metrics = config.metricsListen ? new MetricsEndpoint(config.metricsListen) : undefined;
  const telemetry = startTelemetry(`spillway-${config.target}`, { metricReaders: metrics ? [metrics.reader] : [] });
  const app = await startSpillway(config);
  // Too late to change here (services/app/uv-threadpool.cjs says why): said, so it is seen.
  if (process.env.UV_THREADPOOL_SIZE === undefined) {
    console.log("spillway: libuv's thread pool has its default 4 threads, which long DuckDB statements can hold all of; start with `npm start`, or set UV_THREADPOOL_SIZE=16 (README \"Configuration\")");
  }
  if (metrics) {
    // A process without its scrape endpoint still exports: say so, and go on.
    await metrics.start().then(
      (port) => console.log(`spillway: metrics on http://${config.metricsListen!.replace(/:0$/, `:${port}`)}/metrics`),
      (err: Error) => console.log(`spillway: metrics endpoint not started on ${config.metricsListen} (${err.message}); set SPILLWAY_METRICS_LISTEN to another address, or 'off'`),
    );
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`spillway: ${signal}, stopping`);
    await app.stop();
    await metrics?.stop();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(`spillway: failed to start: ${(err as Error).message}`);
    process.exit(1);
  });
}
