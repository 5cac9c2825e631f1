import { writeFileSync } from "node:fs";

export type Verdict = "PASS" | "MISS" | "NOT MEASURED" | "REPORTED";

/** One row of the results table. Values and baselines are in `unit`. */
export interface Figure {
  id: string;
  measure: string;
  value: number | null;
  baseline: number | null;
  unit: string;
  ratio: number | null;
  target: string;
  verdict: Verdict;
  /** Why a figure is missing, or what else was seen while measuring it. */
  notes: string[];
}

/** value / baseline, PASS when the ratio is at most `maxRatio`. */
export function ratioFigure(id: string, measure: string, value: number, baseline: number, unit: string, maxRatio: number, notes: string[] = []): Figure {
  const ratio = value / baseline;
  return { id, measure, value, baseline, unit, ratio, target: `≤ ${maxRatio}×`, verdict: ratio <= maxRatio ? "PASS" : "MISS", notes };
}

/** An absolute figure, PASS when at most `limit`. */
export function limitFigure(id: string, measure: string, value: number, unit: string, limit: number, target: string, notes: string[] = []): Figure {
  return { id, measure, value, baseline: null, unit, ratio: null, target, verdict: value <= limit ? "PASS" : "MISS", notes };
}

/** A figure with no target, measured to be seen (e.g. #6b, past what the machine is sized for). */
export function reportedFigure(id: string, measure: string, value: number, unit: string, notes: string[] = []): Figure {
  return { id, measure, value, baseline: null, unit, ratio: null, target: "reported", verdict: "REPORTED", notes };
}

export function notMeasured(id: string, measure: string, target: string, reason: string): Figure {
  return { id, measure, value: null, baseline: null, unit: "", ratio: null, target, verdict: "NOT MEASURED", notes: [reason] };
}

function fmt(v: number | null, unit: string): string {
  if (v === null) return "—";
  if (!unit && Number.isInteger(v)) return String(v);
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit ? ` ${unit}` : ""}`;
}

export function formatTable(figures: Figure[]): string {
  const header = ["#", "measure", "value", "baseline", "ratio", "target", "verdict"];
  const rows = figures.map((f) => [f.id, f.measure, fmt(f.value, f.unit), fmt(f.baseline, f.unit), f.ratio === null ? "—" : `${f.ratio.toFixed(2)}×`, f.target, f.verdict]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

export function formatNotes(figures: Figure[]): string {
  const out: string[] = [];
  for (const f of figures) {
    if (!f.notes.length) continue;
    out.push(`#${f.id} ${f.measure}:`);
    // Notes indented by the measure (e.g. phase lines) continue the note above them.
    for (const n of f.notes) out.push(n.startsWith("  ") ? `    ${n}` : `  - ${n}`);
  }
  return out.join("\n");
}

export function writeJson(path: string, body: unknown): void {
  writeFileSync(path, JSON.stringify(body, (_, v) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export const MiB = 1024 * 1024;
export const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`);
export const fmtRate = (rows: number, ms: number) => `${Math.round(rows / (ms / 1000)).toLocaleString("en-US")} rows/s`;

/** The first line of an error (DuckDB's errors go on with the SQL and a caret). */
export function firstLine(err: unknown): string {
  return ((err as Error).message ?? String(err)).split("\n")[0]!.trim();
}
