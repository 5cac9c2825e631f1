import { createServer, type Server } from "node:http";
import { freePort } from "./processes.js";

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  startMs: number;
  durationMs: number;
}

interface OtlpJson {
  resourceSpans?: Array<{
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; startTimeUnixNano: string | number; endTimeUnixNano: string | number }>;
    }>;
  }>;
}

/**
 * A minimal OTLP/HTTP JSON receiver (what a collector would get from Spillway), so
 * runs can be broken into phases from Spillway's own spans without touching its code.
 */
export class TraceCollector {
  readonly spans: Span[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<TraceCollector> {
    let collector: TraceCollector | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (d: Buffer) => chunks.push(d));
      req.on("end", () => {
        try {
          const payload = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as OtlpJson;
          for (const rs of payload.resourceSpans ?? []) {
            for (const ss of rs.scopeSpans ?? []) {
              for (const s of ss.spans ?? []) {
                const start = Number(BigInt(s.startTimeUnixNano) / 1000n) / 1000;
                const end = Number(BigInt(s.endTimeUnixNano) / 1000n) / 1000;
                collector!.spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? "", name: s.name, startMs: start, durationMs: end - start });
              }
            }
          }
        } catch {
          // A payload we cannot read is simply not counted.
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    collector = new TraceCollector(server, `http://127.0.0.1:${port}`);
    return collector;
  }

  /** Spans that started within [fromMs, toMs] (wall clock). */
  between(fromMs: number, toMs: number): Span[] {
    return this.spans.filter((s) => s.startMs >= fromMs - 5 && s.startMs <= toMs);
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Where the time of export runs goes, from the spans of each run's trace. */
export interface RunPhases {
  runs: number;
  /** Per phase: median and max in ms over the runs. */
  phases: Record<string, { median: number; max: number; total: number }>;
}

const SHORT: Record<string, string> = {
  "continuous_export.run": "run (total, in cursor service)",
  "spillway.query.v1.QueryService/ExecuteToSpool": "query → spool (DuckDB COPY to Parquet lz4)",
  "spillway.writer.v1.WriterService/WriteArtifacts": "encode + upload (DuckDB COPY, blob upload)",
  "spillway.catalog.v1.CatalogService/ListExportSpecs": "catalog: list export specs",
  "spillway.catalog.v1.CatalogService/RunContinuousExportNow": "RunContinuousExportNow (server side)",
};

export function runPhases(spans: Span[]): RunPhases {
  const byTrace = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId) ?? [];
    list.push(s);
    byTrace.set(s.traceId, list);
  }
  const values: Record<string, number[]> = {};
  let runs = 0;
  const add = (k: string, v: number) => (values[k] ??= []).push(v);
  for (const trace of byTrace.values()) {
    const run = trace.find((s) => s.name === "continuous_export.run");
    if (!run) continue;
    runs++;
    let accounted = 0;
    for (const s of trace) {
      const label = SHORT[s.name];
      if (!label || s.name === "spillway.catalog.v1.CatalogService/ListExportSpecs") continue;
      add(label, s.durationMs);
      if (s.name.endsWith("/ExecuteToSpool") || s.name.endsWith("/WriteArtifacts")) accounted += s.durationMs;
    }
    add("rest of run (cursor store: begin, list extents, commit)", Math.max(0, run.durationMs - accounted));
  }
  const phases: RunPhases["phases"] = {};
  for (const [k, v] of Object.entries(values)) {
    const sorted = [...v].sort((a, b) => a - b);
    phases[k] = { median: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted[sorted.length - 1]!, total: v.reduce((a, b) => a + b, 0) };
  }
  return { runs, phases };
}

/** Median and max of spans with the given name. */
export function spanStats(spans: Span[], name: string): { count: number; median: number; max: number } | undefined {
  const d = spans.filter((s) => s.name === name).map((s) => s.durationMs).sort((a, b) => a - b);
  if (!d.length) return undefined;
  return { count: d.length, median: d[Math.floor((d.length - 1) / 2)]!, max: d[d.length - 1]! };
}

export function formatPhases(p: RunPhases): string[] {
  if (!p.runs) return ["(no run spans received)"];
  return Object.entries(p.phases).map(([k, v]) => `${k}: median ${v.median.toFixed(1)} ms, max ${v.max.toFixed(1)} ms`);
}
