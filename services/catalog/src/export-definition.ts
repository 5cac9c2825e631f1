import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import type { QueryDescriber, QueryShape } from "@spillway/duck";
import { internal, invalidArgument, failedPrecondition, notFound, SpillwayError } from "@spillway/errors";
import { KqlError, kqlSchemaOf, type KqlEngine, type QueryLanguage } from "@spillway/kql";
import { durationMs, formatDurationMs, isCompatibleType, kustoTypeOfDuckDb, parseKustoType, validateName } from "@spillway/kusto";
import type { CreateOrAlterContinuousExportRequest, ExternalTable, Table } from "@spillway/proto";

export interface ExportLimits {
  minIntervalMs: number;
  minSizeLimit: number;
}

const MAX_SIZE_LIMIT = 1024 * 1024 * 1024;
const DEFAULT_SIZE_LIMIT = 100 * 1024 * 1024;

/** Checks the properties of a continuous export and fills in defaults. */
export function normalizeExportProperties(req: CreateOrAlterContinuousExportRequest, limits: ExportLimits) {
  const where = `continuous export '${req.name}'`;
  const p = req.properties;
  if (!p?.intervalBetweenRuns) throw invalidArgument(`${where}: properties.intervalBetweenRuns is required, e.g. "60s"`);
  const interval = durationMs(p.intervalBetweenRuns);
  if (interval < limits.minIntervalMs) {
    throw invalidArgument(
      `${where}: intervalBetweenRuns ${formatDurationMs(interval)} is below the minimum of ${formatDurationMs(limits.minIntervalMs)}`,
    );
  }
  const latency = durationMs(p.forcedLatency);
  if (latency < 0) throw invalidArgument(`${where}: forcedLatency may not be negative`);
  const sizeLimit = p.sizeLimit === 0n ? BigInt(Math.max(DEFAULT_SIZE_LIMIT, limits.minSizeLimit)) : p.sizeLimit;
  if (sizeLimit < BigInt(limits.minSizeLimit) || sizeLimit > BigInt(MAX_SIZE_LIMIT)) {
    throw invalidArgument(`${where}: sizeLimit ${sizeLimit} is outside ${limits.minSizeLimit}–${MAX_SIZE_LIMIT} bytes`);
  }
  if (p.parquetRowGroupSize < 0) throw invalidArgument(`${where}: parquetRowGroupSize must be positive`);
  return {
    ...p,
    sizeLimit,
    distributed: p.distributed ?? true,
    parquetRowGroupSize: p.parquetRowGroupSize || 100_000,
    useNativeParquetWriter: p.useNativeParquetWriter ?? true,
    forcedLatency: p.forcedLatency ?? create(DurationSchema, {}),
  };
}

/** Splits the tables a query names into fact and dimension tables (SPEC §3, `over`). */
export function factAndDimensionTables(
  exportName: string,
  referenced: readonly string[],
  over: readonly string[],
  tables: ReadonlyMap<string, Table>,
): { facts: string[]; dimensions: string[] } {
  const where = `continuous export '${exportName}'`;
  const canonical = (name: string) => tables.get(name.toLowerCase())?.name;
  const named = referenced.map((r) => canonical(r) ?? r);
  if (named.length === 0) throw invalidArgument(`${where}: the query reads no table; it must read at least one fact table`);
  let facts: string[];
  if (over.length) {
    facts = over.map((o) => {
      validateName("table", o);
      const c = canonical(o);
      if (!c) throw notFound(`${where}: over names table '${o}', which does not exist`);
      if (!named.includes(c)) throw invalidArgument(`${where}: over names table '${o}', which the query does not read`);
      return c;
    });
  } else {
    facts = [...named];
  }
  for (const f of facts) {
    if (!tables.get(f.toLowerCase())!.ingestionTimePolicy) {
      throw failedPrecondition(
        `${where}: fact table '${f}' has its IngestionTime policy off, so its records have no cursor; enable the policy or list only other tables in over`,
      );
    }
  }
  return { facts: [...new Set(facts)], dimensions: [...new Set(named.filter((n) => !facts.includes(n)))] };
}

/** The query's output must have the external table's columns: names, order, compatible types. */
export function checkOutputSchema(where: string, output: ReadonlyArray<{ name: string; type: string }>, target: ExternalTable): void {
  // Virtual partition columns are not stored in the files: the query gives them after the table's columns.
  const expected = [...target.columns, ...target.partitions.filter((p) => !p.column).map((p) => ({ name: p.name, type: p.type }))];
  const show = (cols: ReadonlyArray<{ name: string; type: string }>) => cols.map((c) => `${c.name}:${c.type}`).join(", ");
  const mismatch = (why: string) =>
    invalidArgument(
      `${where}: the query's output (${show(output)}) does not match external table '${target.name}' (${show(expected)}): ${why}`,
    );
  if (output.length !== expected.length) throw mismatch(`${output.length} columns instead of ${expected.length}`);
  expected.forEach((col, i) => {
    const out = output[i]!;
    if (out.name !== col.name) throw mismatch(`column ${i + 1} is '${out.name}', expected '${col.name}'`);
    const outType = parseKustoTypeOrUndefined(out.type) ?? kustoTypeOfDuckDb(out.type);
    const colType = parseKustoType(col.type, where);
    if (!outType || !isCompatibleType(outType, colType)) {
      throw mismatch(`column '${col.name}' is ${out.type}, which cannot be written as ${col.type}`);
    }
  });
}

function parseKustoTypeOrUndefined(type: string) {
  try {
    return parseKustoType(type, "");
  } catch {
    return undefined;
  }
}

/** An export's query as its runs execute it, checked against the tables' schemas. */
export interface ExportQuery {
  /** DuckDB SQL naming tables as runs bind them: the user's SQL, or what their KQL translates to. */
  sql: string;
  /** The tables the SQL reads, as the catalog names them. */
  tables: string[];
  /** The result columns; for KQL, as the parser typed them. */
  columns: Array<{ name: string; type: string }>;
  /** What the SQL does with its rows (whether a run may split over nodes). */
  shape: QueryShape;
}

export type KqlTranslator = Pick<KqlEngine, "translateQuery">;

/**
 * Checks an export's query and tells what its runs will execute. KQL is translated here,
 * once per create/alter, so runs need neither the parser nor a schema; its output is the
 * parser's result type. The translation is still bound by DuckDB against the schemas, as
 * SQL is, so what it reads is what runs will bind and a translation DuckDB refuses is
 * refused now rather than at every run.
 */
export async function describeExportQuery(
  /** What the query is for, as messages name it: "continuous export 'X'". */
  where: string,
  language: QueryLanguage,
  query: string,
  database: string,
  tables: Table[],
  describer: Pick<QueryDescriber, "describe">,
  kql: () => KqlTranslator,
): Promise<ExportQuery> {
  if (language === "sql") {
    const described = await describer.describe(query, tables);
    return { sql: query, tables: described.tables, columns: described.columns, shape: described.shape };
  }
  const schema = kqlSchemaOf(database, tables);
  let translated;
  try {
    translated = await kql().translateQuery(query, schema);
  } catch (err) {
    if (err instanceof KqlError) throw invalidArgument(`${where}: KQL query refused: ${err.message}`);
    throw err;
  }
  let described;
  try {
    described = await describer.describe(translated.sql, tables);
  } catch (err) {
    if (err instanceof SpillwayError) throw new SpillwayError(err.code, `${where}: the SQL the KQL query translates to was refused: ${err.message}`);
    throw err;
  }
  const names = described.columns.map((c) => c.name);
  if (names.length !== translated.columns.length || names.some((n, i) => n !== translated.columns[i]!.name)) {
    throw internal(`${where}: the KQL query's translation gives columns (${names.join(", ")}) instead of (${translated.columns.map((c) => c.name).join(", ")})`);
  }
  return { sql: translated.sql, tables: described.tables, columns: translated.columns, shape: described.shape };
}
