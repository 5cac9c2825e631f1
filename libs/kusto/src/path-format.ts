import { invalidArgument } from "@spillway/errors";

/** A piece of an external table's path format: literal text, or a partition's rendered value. */
export type PathToken =
  | { kind: "text"; text: string }
  | { kind: "partition"; name: string; datetimePattern?: string };

/**
 * Parses a Kusto path format: quoted text separators, partition names, and
 * `datetime_pattern("format", Partition)`, e.g.
 * `"day=" datetime_pattern("yyyyMMdd", Day) "/shard=" Shard`.
 */
export function parsePathFormat(text: string): PathToken[] {
  const tokens: PathToken[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw invalidArgument(`pathFormat: ${why} at position ${i + 1} of ${JSON.stringify(text)}`);
  };
  const readString = (): string => {
    const quote = text[i]!;
    let out = "";
    i++;
    while (i < text.length && text[i] !== quote) {
      if (text[i] === "\\" && i + 1 < text.length) i++;
      out += text[i++];
    }
    if (i >= text.length) fail("unterminated string");
    i++;
    return out;
  };
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const readName = (): string => {
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!m) fail("expected a partition name");
    i += m![0].length;
    return m![0];
  };
  for (skipSpace(); i < text.length; skipSpace()) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      tokens.push({ kind: "text", text: readString() });
    } else if (text.startsWith("datetime_pattern", i)) {
      i += "datetime_pattern".length;
      skipSpace();
      if (text[i] !== "(") fail("expected '(' after datetime_pattern");
      i++;
      skipSpace();
      if (text[i] !== '"' && text[i] !== "'") fail("expected the format string of datetime_pattern");
      const pattern = readString();
      skipSpace();
      if (text[i] !== ",") fail("expected ',' in datetime_pattern");
      i++;
      skipSpace();
      const name = readName();
      skipSpace();
      if (text[i] !== ")") fail("expected ')' closing datetime_pattern");
      i++;
      dotnetToStrftime(pattern);
      tokens.push({ kind: "partition", name, datetimePattern: pattern });
    } else {
      tokens.push({ kind: "partition", name: readName() });
    }
  }
  if (tokens.length === 0) throw invalidArgument("pathFormat is empty");
  return tokens;
}

const SPECIFIERS: Array<[string, string]> = [
  ["yyyy", "%Y"],
  ["yy", "%y"],
  ["MM", "%m"],
  ["M", "%-m"],
  ["dd", "%d"],
  ["d", "%-d"],
  ["HH", "%H"],
  ["H", "%-H"],
  ["mm", "%M"],
  ["m", "%-M"],
  ["ss", "%S"],
  ["s", "%-S"],
];

/**
 * A .NET date format (as datetime_pattern takes it) as a DuckDB strftime format.
 * With braces, only `{...}` holds format letters and the rest is literal
 * (`year={yyyy}/month={MM}`); without, letters are format and quotes hold literals.
 */
export function dotnetToStrftime(pattern: string): string {
  const literal = (s: string) => s.replaceAll("%", "%%");
  const letters = (s: string): string => {
    let out = "";
    for (let i = 0; i < s.length; ) {
      const c = s[i]!;
      if (c === "'" || c === '"') {
        const end = s.indexOf(c, i + 1);
        if (end < 0) throw invalidArgument(`datetime_pattern "${pattern}": unterminated quoted text`);
        out += literal(s.slice(i + 1, end));
        i = end + 1;
        continue;
      }
      if (c === "\\" && i + 1 < s.length) {
        out += literal(s[i + 1]!);
        i += 2;
        continue;
      }
      const spec = SPECIFIERS.find(([k]) => s.startsWith(k, i));
      if (spec) {
        out += spec[1];
        i += spec[0].length;
      } else if (/[A-Za-z]/.test(c)) {
        throw invalidArgument(`datetime_pattern "${pattern}": '${c}' is not a supported format letter (use yyyy, MM, dd, HH, mm, ss)`);
      } else {
        out += literal(c);
        i++;
      }
    }
    return out;
  };
  if (!pattern.includes("{")) return letters(pattern);
  let out = "";
  for (const part of pattern.split(/(\{[^}]*\})/)) {
    out += part.startsWith("{") && part.endsWith("}") ? letters(part.slice(1, -1)) : literal(part);
  }
  return out;
}
