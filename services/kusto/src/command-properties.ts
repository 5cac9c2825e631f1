import { invalidArgument } from "@spillway/errors";
import type { CommandProperties } from "@spillway/kql";
import { durationFromMs, parseTimespan } from "@spillway/kusto";
import type { ExportProperties, ExternalTableProperties } from "@spillway/proto";

type Reader<T> = (value: string, name: string) => T;

const text: Reader<string> = (value) => value;

const bool: Reader<boolean> = (value, name) => {
  const v = value.toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  throw invalidArgument(`property ${name}: '${value}' is not a bool; write true or false`);
};

const long: Reader<bigint> = (value, name) => {
  if (!/^\d{1,19}$/.test(value)) throw invalidArgument(`property ${name}: '${value}' is not a long`);
  return BigInt(value);
};

const int: Reader<number> = (value, name) => {
  if (!/^\d{1,10}$/.test(value) || Number(value) > 2 ** 31 - 1) throw invalidArgument(`property ${name}: '${value}' is not an int`);
  return Number(value);
};

const timespan: Reader<ReturnType<typeof durationFromMs>> = (value, name) => durationFromMs(parseTimespan(value, `property ${name}`));

/**
 * Reads `with (...)` properties by a table of the ones a command knows, matching names
 * without regard to case as Kusto does. A property Spillway does not know is refused, never
 * ignored: a setting silently dropped would make the command do something else than asked.
 */
function readProperties<S extends Record<string, Reader<unknown>>>(
  properties: CommandProperties,
  known: S,
  where: string,
): { [K in keyof S]?: ReturnType<S[K]> } {
  const byLower = new Map(Object.keys(known).map((k) => [k.toLowerCase(), k]));
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(properties)) {
    const key = byLower.get(name.toLowerCase());
    if (key === undefined) {
      throw invalidArgument(`${where}: unknown property '${name}' in with (...); Spillway knows ${Object.keys(known).join(", ")}`);
    }
    if (key in out) throw invalidArgument(`${where}: property '${key}' is given twice`);
    out[key] = known[key]!(value, key);
  }
  return out as { [K in keyof S]?: ReturnType<S[K]> };
}

/** `.create table ... with (docstring=...)`. Tables have no folder here, so `folder` is refused rather than dropped. */
export function tableProperties(properties: CommandProperties): { docString: string } {
  const p = readProperties(properties, { docstring: text }, ".create table");
  return { docString: p.docstring ?? "" };
}

/** The optional properties of an external table (Kusto's "Create and alter Azure Storage external tables" page). */
export function externalTableProperties(properties: CommandProperties): Partial<Omit<ExternalTableProperties, "$typeName">> {
  const p = readProperties(
    properties,
    { folder: text, docString: text, includeHeaders: text, compressed: bool, compressionType: text, namePrefix: text, fileExtension: text, encoding: text },
    "external table",
  );
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
}

/** The properties of a continuous export (SPEC §4; Kusto's "Create or alter continuous export" page). */
export function exportProperties(properties: CommandProperties): Partial<Omit<ExportProperties, "$typeName">> {
  const p = readProperties(
    properties,
    {
      intervalBetweenRuns: timespan,
      forcedLatency: timespan,
      sizeLimit: long,
      distributed: bool,
      parquetRowGroupSize: int,
      useNativeParquetWriter: bool,
      managedIdentity: text,
      isDisabled: bool,
    },
    "continuous export",
  );
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
}

/** `.export [async] to table T with (sizeLimit=..., parquetRowGroupSize=...) <| query`. */
export function oneShotExportProperties(properties: CommandProperties): { sizeLimit: bigint; parquetRowGroupSize: number } {
  const p = readProperties(properties, { sizeLimit: long, parquetRowGroupSize: int }, ".export to table");
  return { sizeLimit: p.sizeLimit ?? 0n, parquetRowGroupSize: p.parquetRowGroupSize ?? 0 };
}

/**
 * `.ingest inline ... with (format=..., ignoreFirstRecord=..., tags='["ingest-by:x"]',
 * ingestIfNotExists='["x"]')`; CSV when no format is named, as in Kusto. Of tags, only
 * ingest-by ones are kept (the ingestion's identity for ingestIfNotExists).
 */
export function ingestProperties(properties: CommandProperties): { format: string; ignoreFirstRecord: boolean; ingestByTags: string[]; ingestIfNotExists: string[] } {
  const p = readProperties(properties, { format: text, ignoreFirstRecord: bool, tags: text, ingestIfNotExists: text }, ".ingest inline");
  return { format: p.format ?? "csv", ignoreFirstRecord: p.ignoreFirstRecord ?? false, ...ingestTags(p, ".ingest inline") };
}

/** `.ingest into table T (h'...') with (...)`: `.ingest inline`'s properties and zipPattern. */
export function ingestFromStorageProperties(properties: CommandProperties): { format: string; ignoreFirstRecord: boolean; zipPattern: string; ingestByTags: string[]; ingestIfNotExists: string[] } {
  const p = readProperties(properties, { format: text, ignoreFirstRecord: bool, zipPattern: text, tags: text, ingestIfNotExists: text }, ".ingest into");
  return { format: p.format ?? "csv", ignoreFirstRecord: p.ignoreFirstRecord ?? false, zipPattern: p.zipPattern ?? "", ...ingestTags(p, ".ingest into") };
}

/** `.append`, `.set-or-append`, `.set-or-replace ... with (tags=..., ingestIfNotExists=...)`. */
export function ingestFromQueryProperties(properties: CommandProperties, command: string): { ingestByTags: string[]; ingestIfNotExists: string[] } {
  return ingestTags(readProperties(properties, { tags: text, ingestIfNotExists: text }, command), command);
}

/** Of tags, the ingest-by ones (the ingestion's identity for ingestIfNotExists); others are refused. */
function ingestTags(p: { tags?: string; ingestIfNotExists?: string }, command: string): { ingestByTags: string[]; ingestIfNotExists: string[] } {
  const tags = stringList(p.tags, "tags", command);
  const other = tags.filter((t) => !t.startsWith("ingest-by:"));
  if (other.length) throw invalidArgument(`${command}: tags ${other.map((t) => `'${t}'`).join(", ")} are not supported; only ingest-by: tags are`);
  return { ingestByTags: tags.map((t) => t.slice("ingest-by:".length)), ingestIfNotExists: stringList(p.ingestIfNotExists, "ingestIfNotExists", command) };
}

/** A property holding a JSON array of strings, as Kusto writes tags: '["a","b"]'. */
function stringList(value: string | undefined, name: string, command: string): string[] {
  if (value === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === "string")) throw invalidArgument(`${command}: ${name} must be a JSON array of strings, e.g. '["ingest-by:batch-7"]'`);
  return parsed as string[];
}
