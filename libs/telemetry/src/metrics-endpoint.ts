import { createServer, type Server } from "node:http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";

/** Histogram buckets for durations in seconds, from a small run (milliseconds) to a bulk one (minutes). */
export const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * The Prometheus scrape endpoint (`GET /metrics`) of this process. The exporter renders the
 * metrics; this server, not the exporter's own, listens, so the address may have port 0 and
 * the port taken is known (tests run many processes at once).
 */
export class MetricsEndpoint {
  readonly reader = new PrometheusExporter({ preventServerStart: true });
  private server: Server | undefined;

  constructor(private readonly listen: string) {}

  /** Starts listening; resolves to the port taken. */
  async start(): Promise<number> {
    const at = this.listen.lastIndexOf(":");
    const host = this.listen.slice(0, at).replace(/^\[|\]$/g, "");
    const port = Number(this.listen.slice(at + 1));
    const server = createServer((req, res) => {
      if (req.method === "GET" && (req.url === "/metrics" || req.url?.startsWith("/metrics?"))) return this.reader.getMetricsRequestHandler(req, res);
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
