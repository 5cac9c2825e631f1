import { invalidArgument } from "@spillway/errors";
import { parsePathFormat, type PathToken } from "./path-format.js";
import type { KustoType } from "./column-types.js";

export const PARTITION_FUNCTIONS = ["", "hash", "startofyear", "startofmonth", "startofweek", "startofday", "bin"] as const;
export type PartitionFunction = (typeof PARTITION_FUNCTIONS)[number];

export interface PartitionSpec {
  name: string;
  type: "string" | "long" | "datetime";
  function: PartitionFunction;
  /** Empty for a virtual column: its value comes from the query output column of the same name. */
  column: string;
  modulo: bigint;
  binSizeMs: number;
}

export interface PartitionInput {
  name: string;
  type: string;
  function: string;
  column: string;
  modulo: bigint;
  binSizeMs: number;
}

/** Checks partitions against the table's columns: names, types, functions (SPEC §5). */
export function validatePartitions(partitions: readonly PartitionInput[], columns: ReadonlyArray<{ name: string; type: KustoType }>, where: string): PartitionSpec[] {
  const seen = new Set<string>();
  return partitions.map((p, i) => {
    const at = `${where}, partition ${p.name || i + 1}`;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(p.name)) throw invalidArgument(`${at}: invalid partition name '${p.name}'`);
    if (seen.has(p.name.toLowerCase())) throw invalidArgument(`${at}: partition '${p.name}' appears twice`);
    seen.add(p.name.toLowerCase());
    const type = p.type.toLowerCase();
    if (type !== "string" && type !== "long" && type !== "datetime") {
      throw invalidArgument(`${at}: type '${p.type}' is not a partition type; use string, long or datetime`);
    }
    const fn = p.function.toLowerCase() as PartitionFunction;
    if (!PARTITION_FUNCTIONS.includes(fn)) {
      throw invalidArgument(`${at}: function '${p.function}' is not a partition function; use hash, startofyear, startofmonth, startofweek, startofday or bin`);
    }
    if (!p.column) {
      if (fn) throw invalidArgument(`${at}: function ${fn} needs a column`);
      if (type === "long") throw invalidArgument(`${at}: a virtual column is string or datetime`);
      if (columns.some((c) => c.name.toLowerCase() === p.name.toLowerCase())) {
        throw invalidArgument(`${at}: virtual column '${p.name}' has the name of a stored column`);
      }
      return { name: p.name, type, function: "", column: "", modulo: 0n, binSizeMs: 0 };
    }
    const source = columns.find((c) => c.name === p.column);
    if (!source) throw invalidArgument(`${at}: column '${p.column}' is not a column of the table`);
    const mismatch = (want: string) => invalidArgument(`${at}: ${want}; column '${p.column}' is ${source.type}`);
    switch (fn) {
      case "":
        if (type !== "string") throw invalidArgument(`${at}: a partition by value (no function) has type string, not ${type}`);
        if (source.type === "dynamic") throw mismatch("a string partition needs a scalar column");
        break;
      case "hash":
        if (type !== "long") throw invalidArgument(`${at}: hash(${p.column}, N) gives a long partition, not ${type}`);
        if (p.modulo < 1n) throw invalidArgument(`${at}: hash needs a modulo N of at least 1`);
        if (source.type === "dynamic") throw mismatch("hash needs a scalar column");
        break;
      default:
        if (type !== "datetime") throw invalidArgument(`${at}: ${fn}(${p.column}) gives a datetime partition, not ${type}`);
        if (source.type !== "datetime") throw mismatch(`${fn} needs a datetime column`);
        if (fn === "bin" && p.binSizeMs <= 0) throw invalidArgument(`${at}: bin needs a positive binSize, e.g. "3600s"`);
    }
    return { name: p.name, type, function: fn, column: p.column, modulo: p.modulo, binSizeMs: fn === "bin" ? p.binSizeMs : 0 };
  });
}

/** The path tokens of an external table: its path format, or its partitions joined by '/'. */
export function pathTokens(pathFormat: string, partitions: readonly PartitionSpec[], where: string): PathToken[] {
  if (!pathFormat) {
    return partitions.flatMap((p, i): PathToken[] => [...(i ? [{ kind: "text" as const, text: "/" }] : []), { kind: "partition", name: p.name }]);
  }
  if (partitions.length === 0) throw invalidArgument(`${where}: pathFormat needs partitions to refer to`);
  const tokens = parsePathFormat(pathFormat);
  const names = new Set(partitions.map((p) => p.name));
  for (const t of tokens) {
    if (t.kind !== "partition") continue;
    if (!names.has(t.name)) throw invalidArgument(`${where}: pathFormat refers to '${t.name}', which is not a partition`);
    const p = partitions.find((q) => q.name === t.name)!;
    if (t.datetimePattern && p.type !== "datetime") throw invalidArgument(`${where}: datetime_pattern needs a datetime partition; '${p.name}' is ${p.type}`);
  }
  for (const p of partitions) {
    if (!tokens.some((t) => t.kind === "partition" && t.name === p.name)) {
      throw invalidArgument(`${where}: partition '${p.name}' does not appear in pathFormat`);
    }
  }
  return tokens;
}

/** Kusto's default rendering of a datetime partition (SPEC §5), as a .NET pattern. */
export function defaultDatetimePattern(p: PartitionSpec): string {
  switch (p.function) {
    case "startofyear":
      return "yyyy";
    case "startofmonth":
      return "yyyy/MM";
    case "bin":
      if (p.binSizeMs % 86_400_000 === 0) return "yyyy/MM/dd";
      if (p.binSizeMs % 3_600_000 === 0) return "yyyy/MM/dd/HH";
      if (p.binSizeMs % 60_000 === 0) return "yyyy/MM/dd/HH/mm";
      return "yyyy/MM/dd/HH/mm/ss";
    default:
      return "yyyy/MM/dd";
  }
}
