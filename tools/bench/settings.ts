import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tools/bench/ is two levels down). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export const ALL_MEASURES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] as const;
export type MeasureId = (typeof ALL_MEASURES)[number];

/** Rows of one ingestion payload (the 100k-row CSV payloads). */
export const PAYLOAD_ROWS = 100_000;

export interface BenchSettings {
  /** Multiplies every row count (BENCH_SCALE, default 1). */
  scale: number;
  /** The measures to run (BENCH_ONLY=1,3; default all). */
  only: Set<MeasureId>;
  /** Seed of the generated data (BENCH_SEED). */
  seed: number;
  /** Ingest calls in flight at once when loading data (BENCH_INGEST_CONCURRENCY, default: cores). */
  ingestConcurrency: number;
  /** Collect OpenTelemetry spans from Spillway for phase timings (BENCH_TRACE=0 turns it off). */
  trace: boolean;
  /** Run Spillway under `node --cpu-prof` (BENCH_CPU_PROF=1); profiles are kept. */
  cpuProf: boolean;
  /** Keep the work directory (generated data, data dirs) afterwards (BENCH_KEEP=1). */
  keep: boolean;
  /** Where generated data, data dirs and Azurite's files go (BENCH_WORK_DIR; default a temp dir). */
  workDir?: string;
  /** Where the JSON results are written (BENCH_OUT). */
  out: string;
  /** Runs of the latency measure (#3) (BENCH_LATENCY_RUNS, default 200). */
  latencyRuns: number;
  /** sizeLimit of every export the bench creates, in bytes (BENCH_SIZE_LIMIT, e.g. 1GB); default Spillway's. */
  sizeLimit?: bigint;
  /** Run #6b besides #6 when #6 is measured (BENCH_6B=0 leaves it out: #6 alone takes half the time). */
  with6b: boolean;
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}='${raw}' must be a positive number`);
  return n;
}

function parseBytes(text: string): bigint {
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(text.trim());
  if (!m) throw new Error(`BENCH_SIZE_LIMIT='${text}' is not a size; write e.g. 1GB, 500MB, 1048576`);
  return BigInt(m[1]!) * { b: 1n, kb: 1024n, mb: 1024n ** 2n, gb: 1024n ** 3n }[(m[2] ?? "b").toLowerCase() as "b"];
}

export function loadSettings(): BenchSettings {
  const onlyRaw = process.env.BENCH_ONLY?.trim();
  const only = new Set<MeasureId>();
  if (onlyRaw) {
    for (const part of onlyRaw.split(/[\s,]+/).filter(Boolean)) {
      const n = Number(part);
      if (!ALL_MEASURES.includes(n as MeasureId)) throw new Error(`BENCH_ONLY: '${part}' is not a measure (1–10)`);
      only.add(n as MeasureId);
    }
  } else {
    ALL_MEASURES.forEach((m) => only.add(m));
  }
  return {
    scale: positiveNumber("BENCH_SCALE", 1),
    only,
    seed: Math.floor(positiveNumber("BENCH_SEED", 20260101)),
    ingestConcurrency: Math.floor(positiveNumber("BENCH_INGEST_CONCURRENCY", availableParallelism())),
    trace: process.env.BENCH_TRACE !== "0",
    cpuProf: process.env.BENCH_CPU_PROF === "1",
    keep: process.env.BENCH_KEEP === "1",
    workDir: process.env.BENCH_WORK_DIR || undefined,
    out: resolve(process.env.BENCH_OUT || join(REPO_ROOT, "tools/bench/bench-results.json")),
    latencyRuns: Math.floor(positiveNumber("BENCH_LATENCY_RUNS", 200)),
    sizeLimit: process.env.BENCH_SIZE_LIMIT ? parseBytes(process.env.BENCH_SIZE_LIMIT) : undefined,
    with6b: process.env.BENCH_6B !== "0",
  };
}

/** A row count of the issue, scaled (at least 1). */
export function scaled(settings: BenchSettings, rows: number): number {
  return Math.max(1, Math.round(rows * settings.scale));
}
