// Kusto's literal spellings for datetime, timespan and real, read from the token text:
// the parser's own decoded values lose precision (milliseconds) or drop forms such as
// `time(1.12:30:55.123)` and `real(nan)`.

const TICKS_PER: Record<string, bigint> = {
  d: 864_000_000_000n, day: 864_000_000_000n, days: 864_000_000_000n,
  h: 36_000_000_000n, hr: 36_000_000_000n, hrs: 36_000_000_000n, hour: 36_000_000_000n, hours: 36_000_000_000n,
  m: 600_000_000n, min: 600_000_000n, minute: 600_000_000n, minutes: 600_000_000n,
  s: 10_000_000n, sec: 10_000_000n, second: 10_000_000n, seconds: 10_000_000n,
  ms: 10_000n, milli: 10_000n, millis: 10_000n, millisecond: 10_000n, milliseconds: 10_000n,
  microsecond: 10n, microseconds: 10n,
  tick: 1n, ticks: 1n,
};

/** `1.5h`, `10m`, `time(1.12:30:55.123)`, `timespan(2d)`, `time(null)` → ticks, or null. */
export function timespanTicks(token: string): bigint | null | undefined {
  let t = token.trim();
  const wrapped = /^(?:time|timespan)\s*\((.*)\)$/s.exec(t);
  if (wrapped) t = wrapped[1]!.trim();
  if (t === "null") return null;
  const negative = t.startsWith("-");
  if (negative) t = t.slice(1);
  let ticks: bigint | undefined;
  const unit = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]+)$/.exec(t);
  if (unit) {
    const per = TICKS_PER[unit[2]!.toLowerCase()];
    if (per === undefined) return undefined;
    ticks = decimalTimes(unit[1]!, per);
  } else if (/^\d+(?:\.\d+)?$/.test(t)) {
    // A bare number inside time(...) counts days.
    ticks = decimalTimes(t, TICKS_PER.d!);
  } else {
    const clock = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$/.exec(t);
    if (!clock) return undefined;
    const [, d = "0", h, m, s = "0", f = ""] = clock;
    ticks = BigInt(d) * TICKS_PER.d! + BigInt(h!) * TICKS_PER.h! + BigInt(m!) * TICKS_PER.m! + BigInt(s) * TICKS_PER.s! + BigInt(f.padEnd(7, "0") || "0");
  }
  return negative ? -ticks : ticks;
}

function decimalTimes(number: string, per: bigint): bigint {
  const [whole, fraction = ""] = number.split(".");
  const scale = 10n ** BigInt(fraction.length);
  return (BigInt(whole!) * scale + BigInt(fraction || "0")) * per / scale;
}

/**
 * `datetime(2017-01-01 10:00:00.1234567)`, `datetime("2015-12-31")`, `datetime(12-02-2022)`
 * → ISO text with 7 fractional digits and Z, or null for `datetime(null)`; undefined when
 * the form is not one this reader knows.
 */
export function datetimeIso(token: string): string | null | undefined {
  let t = token.trim();
  const wrapped = /^(?:datetime|date)\s*\((.*)\)$/s.exec(t);
  if (wrapped) t = wrapped[1]!.trim();
  if (/^(['"]).*\1$/s.test(t)) t = t.slice(1, -1).trim();
  if (t === "null") return null;
  return parseDatetimeText(t);
}

export function parseDatetimeText(text: string): string | undefined {
  const t = text.trim();
  let m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?)?\s*(Z|[+-]00:?00)?$/.exec(t);
  if (m) return iso(m[1]!, m[2]!, m[3]!, m[4], m[5], m[6], m[7]);
  // US order, as .NET reads `12-02-2022` and `12/02/2022`.
  m = /^(\d{1,2})[-/](\d{1,2})[-/](\d{4})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?)?$/.exec(t);
  if (m) return iso(m[3]!, m[1]!, m[2]!, m[4], m[5], m[6], m[7]);
  return undefined;
}

function iso(y: string, mo: string, d: string, h = "0", mi = "0", s = "0", f = ""): string | undefined {
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  const probe = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return undefined;
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(year, 4)}-${p(month)}-${p(day)}T${p(hour)}:${p(minute)}:${p(second)}.${f.padEnd(7, "0")}Z`;
}

/** `1.5`, `1e3`, `real(nan)`, `real(+inf)`, `real(null)` → the number, null, or undefined. */
export function realValue(token: string): number | null | undefined {
  let t = token.trim();
  const wrapped = /^(?:real|double)\s*\((.*)\)$/s.exec(t);
  if (wrapped) t = wrapped[1]!.trim();
  const lower = t.toLowerCase();
  if (lower === "null") return null;
  if (lower === "nan") return Number.NaN;
  if (lower === "+inf" || lower === "inf") return Number.POSITIVE_INFINITY;
  if (lower === "-inf") return Number.NEGATIVE_INFINITY;
  const n = Number(t);
  return Number.isNaN(n) ? undefined : n;
}
