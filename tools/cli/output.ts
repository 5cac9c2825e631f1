/** How the CLI prints what it got: an aligned table for people, JSON or CSV for scripts. */
export type OutputFormat = "table" | "json" | "csv";

export type Row = Record<string, unknown>;

export function render(rows: Row[], format: OutputFormat, columns = columnsOf(rows)): string {
  if (format === "json") return JSON.stringify(rows, null, 2);
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  if (format === "csv") return [columns, ...cells].map((line) => line.map(csvField).join(",")).join("\n");
  if (rows.length === 0) return "(none)";
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

function columnsOf(rows: Row[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
