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
  /** Per phase: median and max in ms over the runs (a phase seen several times in a run is summed). */
  phases: Record<string, { median: number; max: number; perRun: number }>;
}

const RUN_SPAN = "continuous_export.run";
const TRIGGER_SPAN = "spillway.catalog.v1.CatalogService/RunContinuousExportNow";

/** What a span name stands for, where it helps to say so. */
const DESCRIBE: Record<string, string> = {
  ExecuteToSpool: "DuckDB: export query → spool Parquet",
  WriteArtifacts: "DuckDB encode + upload",
  StageArtifacts: "DuckDB: spool → artifact file",
  UploadArtifacts: "upload to storage",
};

function label(name: string): string {
  if (name === RUN_SPAN) return "run span (total)";
  if (name === TRIGGER_SPAN) return "RunContinuousExportNow server span";
  const method = name.includes("/") ? name.slice(name.lastIndexOf("/") + 1) : name;
  return DESCRIBE[method] ? `${method} (${DESCRIBE[method]})` : method;
}

/**
 * Breaks runs into the spans directly under each `continuous_export.run` span (whatever
 * the runner calls: its children are found, not assumed), plus the time of the run not
 * covered by any child (the runner's own work: cursor store reads and writes).
 */
export function runPhases(spans: Span[]): RunPhases {
  const byTrace = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId) ?? [];
    list.push(s);
    byTrace.set(s.traceId, list);
  }
  const values: Record<string, number[]> = {};
  const order: string[] = [];
  let runs = 0;
  const add = (k: string, v: number) => {
    if (!values[k]) {
      values[k] = [];
      order.push(k);
    }
    values[k]!.push(v);
  };
  for (const trace of byTrace.values()) {
    for (const run of trace.filter((s) => s.name === RUN_SPAN)) {
      runs++;
      const trigger = trace.find((s) => s.name === TRIGGER_SPAN);
      if (trigger) add(label(TRIGGER_SPAN), trigger.durationMs);
      add(label(RUN_SPAN), run.durationMs);
      const perName = new Map<string, number>();
      let covered = 0;
      for (const child of trace.filter((s) => s.parentSpanId === run.spanId).sort((a, b) => a.startMs - b.startMs)) {
        perName.set(child.name, (perName.get(child.name) ?? 0) + child.durationMs);
        covered += child.durationMs;
      }
      for (const [name, ms] of perName) add(`  ${label(name)}`, ms);
      add("  (rest of the run: cursor store, between calls)", Math.max(0, run.durationMs - covered));
    }
  }
  const phases: RunPhases["phases"] = {};
  for (const k of order) {
    const v = values[k]!;
    const sorted = [...v].sort((a, b) => a - b);
    phases[k] = { median: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted[sorted.length - 1]!, perRun: v.reduce((a, b) => a + b, 0) / runs };
  }
  return { runs, phases };
}

/**
 * The run of median length, every span of its trace (at any depth) by start: offset from the
 * trace's first span and duration, indented by depth. Shows what overlaps and where the gaps are.
 */
export function medianRunTimeline(spans: Span[]): string[] {
  const runs = spans.filter((s) => s.name === RUN_SPAN).sort((a, b) => a.durationMs - b.durationMs);
  const run = runs[Math.floor((runs.length - 1) / 2)];
  return run ? runTimeline(spans, run, `the median run (${run.durationMs.toFixed(1)} ms)`) : [];
}

/** The `count` slowest runs, span by span: what a run in #3's tail (its p99) waited for. */
export function slowestRunTimelines(spans: Span[], count: number): string[] {
  const runs = spans.filter((s) => s.name === RUN_SPAN).sort((a, b) => b.durationMs - a.durationMs);
  return runs.slice(0, count).flatMap((run, i) => runTimeline(spans, run, `slowest run #${i + 1} (${run.durationMs.toFixed(1)} ms)`));
}

function runTimeline(spans: Span[], run: Span, title: string): string[] {
  const trace = spans.filter((s) => s.traceId === run.traceId).sort((a, b) => a.startMs - b.startMs);
  const t0 = trace[0]!.startMs;
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  const depth = (s: Span): number => {
    let d = 0;
    for (let p = byId.get(s.parentSpanId); p; p = byId.get(p.parentSpanId)) d++;
    return d;
  };
  return [`${title}, span by span: start offset +duration`, ...trace.map((s) => `  ${"  ".repeat(depth(s))}${(s.startMs - t0).toFixed(1).padStart(6)} +${s.durationMs.toFixed(1)} ${label(s.name)}`)];
}

/** Median and max of spans with the given name. */
export function spanStats(spans: Span[], name: string): { count: number; median: number; max: number } | undefined {
  const d = spans.filter((s) => s.name === name).map((s) => s.durationMs).sort((a, b) => a - b);
  if (!d.length) return undefined;
  return { count: d.length, median: d[Math.floor((d.length - 1) / 2)]!, max: d[d.length - 1]! };
}

export function formatPhases(p: RunPhases): string[] {
  if (!p.runs) return ["(no run spans received)"];
  const runs = p.runs === 1 ? "1 run" : `${p.runs} runs; median, max`;
  return [
    `phases from Spillway's spans (${runs}):`,
    ...Object.entries(p.phases).map(([k, v]) => `  ${k}: ${v.median.toFixed(1)} ms${p.runs === 1 ? "" : `, ${v.max.toFixed(1)} ms`}`),
  ];
}
