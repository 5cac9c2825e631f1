import { invalidArgument } from "@spillway/errors";

const UNITS_MS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

/**
 * Parses a timespan as Kusto and people write it: `90s`, `1m`, `1.5h`, `2d`, `250ms`,
 * or `[d.]hh:mm[:ss[.fffffff]]`. Returns milliseconds.
 */
export function parseTimespan(text: string, what: string): number {
  const t = text.trim();
  const unit = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(t);
  if (unit) {
    const factor = UNITS_MS[unit[2]!.toLowerCase()];
    if (factor !== undefined) return Math.round(Number(unit[1]) * factor);
  }
  const clock = /^(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$/.exec(t);
  if (clock) {
    const [, d = "0", h, m, s = "0", frac = "0"] = clock;
    return (
      Number(d) * 86_400_000 + Number(h) * 3_600_000 + Number(m) * 60_000 + Number(s) * 1000 + Math.round(Number(`0.${frac}`) * 1000)
    );
  }
  throw invalidArgument(`${what}: '${text}' is not a timespan; write e.g. 90s, 5m, 1h or 00:05:00`);
}

export function formatDurationMs(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A google.protobuf.Duration (or its absence) in milliseconds. */
export function durationMs(d: { seconds: bigint; nanos: number } | undefined): number {
  return d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : 0;
}

export function durationFromMs(ms: number): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}
