// Runs KQL conformance cases (input tables, query, Kusto's answer) through the engine and an
// in-memory DuckDB, and says whether Spillway answered as Kusto did, refused, or differed.
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { KUSTO_TO_DUCKDB, type KustoType } from "@spillway/kusto";
import { KqlError } from "../kql-error.js";
import type { KqlEngine } from "../kql-engine.js";
import { kustoJsonValue, renderColumnSql, type KustoJson } from "../kusto-json-value.js";
import { parseTimespanSql, quoteIdent, quoteLiteral } from "../sql-fragments.js";

export interface ConformanceCase {
  id: string;
  family?: string;
  doc_source?: string;
  tables: Array<{ name: string; columns: Array<{ name: string; type: KustoType }>; rows: unknown[][] }>;
  query: string;
  expected: { columns: Array<{ name: string; type: string }>; ordered: boolean; rows: unknown[][] };
  notes?: string[] | string;
}

export type Outcome =
  | { kind: "pass" }
  | { kind: "refused"; reason: string }
  | { kind: "wrong"; reason: string; sql?: string }
  | { kind: "broken"; reason: string; sql: string };

export async function openCaseDatabase(): Promise<DuckDBConnection> {
  const db = await DuckDBInstance.create(":memory:", { threads: "1" });
  const connection = await db.connect();
  // Queries compute in UTC, as the query service's sandboxed instances do.
  await connection.run("SET TimeZone = 'UTC'");
  return connection;
}

function valueSql(value: unknown, type: KustoType): string {
  if (value === null || value === undefined) return `CAST(NULL AS ${KUSTO_TO_DUCKDB[type]})`;
  switch (type) {
    case "dynamic":
      return `CAST(${quoteLiteral(JSON.stringify(value))} AS JSON)`;
    case "timespan":
      return parseTimespanSql(quoteLiteral(String(value)));
    case "datetime":
      return `CAST(${quoteLiteral(String(value).replace(/Z$/, ""))} AS TIMESTAMP)`;
    case "real":
      return typeof value === "string" ? `CAST(${quoteLiteral(value === "Infinity" ? "inf" : value === "-Infinity" ? "-inf" : value)} AS DOUBLE)` : `CAST(${String(value)} AS DOUBLE)`;
    default:
      return `CAST(${quoteLiteral(String(value))} AS ${KUSTO_TO_DUCKDB[type]})`;
  }
}

export async function runCase(engine: KqlEngine, connection: DuckDBConnection, c: ConformanceCase): Promise<Outcome> {
  const schema = { database: "db", tables: c.tables.map((t) => ({ name: t.name, columns: t.columns })) };
  let translated;
  try {
    translated = await engine.translateQuery(c.query, schema);
  } catch (e: unknown) {
    if (e instanceof KqlError) return { kind: "refused", reason: e.message };
    throw e;
  }
  const { sql, columns } = translated;
  // Each case gets its own schema so table names never collide between cases.
  const schemaName = `case_${c.id.replace(/[^A-Za-z0-9_]/g, "_")}`;
  await connection.run(`DROP SCHEMA IF EXISTS ${schemaName} CASCADE; CREATE SCHEMA ${schemaName}; SET schema = '${schemaName}'`);
  for (const t of c.tables) {
    await connection.run(`CREATE TABLE ${quoteIdent(t.name)} (${t.columns.map((col) => `${quoteIdent(col.name)} ${KUSTO_TO_DUCKDB[col.type]}`).join(", ")})`);
    for (const row of t.rows) {
      await connection.run(`INSERT INTO ${quoteIdent(t.name)} VALUES (${row.map((v, i) => valueSql(v, t.columns[i]!.type)).join(", ")})`);
    }
  }
  let rows: (string | null)[][];
  try {
    const rendered = `SELECT ${columns.map((col) => renderColumnSql(col.name, col.type)).join(", ")} FROM (${sql})`;
    const reader = await connection.runAndReadAll(rendered);
    rows = reader.getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
  } catch (e: unknown) {
    return { kind: "broken", reason: (e as Error).message.split("\n")[0]!, sql };
  } finally {
    await connection.run(`SET schema = 'main'; DROP SCHEMA ${schemaName} CASCADE`);
  }
  const actual = rows.map((r) => r.map((v, i) => kustoJsonValue(v, columns[i]!.type)));
  const wrongColumns = JSON.stringify(columns.map((x) => [x.name, x.type])) !== JSON.stringify(c.expected.columns.map((x) => [x.name, x.type]));
  if (wrongColumns) return { kind: "wrong", reason: `columns ${JSON.stringify(columns)} but Kusto gave ${JSON.stringify(c.expected.columns)}`, sql };
  const problem = compareRows(actual, c.expected.rows as KustoJson[][], c.expected.ordered, unorderedArrays(c));
  return problem ? { kind: "wrong", reason: problem, sql } : { kind: "pass" };
}

// make_set and make_bag do not promise an element order (README "Engine choices").
function unorderedArrays(c: ConformanceCase): boolean {
  return /make_set|set_union|set_intersect|set_difference/.test(c.query);
}

/** Canonical text of a value: reals to 12 significant digits, long values as numbers. */
function canonical(v: KustoJson, sortArrays: boolean): string {
  if (typeof v === "number") return Number.isInteger(v) && Math.abs(v) > 2 ** 53 ? Number(v).toPrecision(15) : Number(v.toPrecision(12)).toString();
  if (typeof v === "string" && /^-?\d+$/.test(v) && v.length > 15) return Number(v).toPrecision(15);
  if (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)) return Number(Number(v).toPrecision(12)).toString();
  if (Array.isArray(v)) {
    const items = v.map((x) => canonical(x, sortArrays));
    return `[${(sortArrays ? items.sort() : items).join(",")}]`;
  }
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k]!, sortArrays)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export function compareRows(actual: KustoJson[][], expected: KustoJson[][], ordered: boolean, sortArrays: boolean): string | undefined {
  const a = actual.map((r) => canonical(r, sortArrays));
  const e = expected.map((r) => canonical(r, sortArrays));
  if (!ordered) {
    a.sort();
    e.sort();
  }
  if (a.length !== e.length) return `${a.length} rows but Kusto gave ${e.length}: ${a.slice(0, 5).join(" ")} vs ${e.slice(0, 5).join(" ")}`;
  const i = a.findIndex((x, n) => x !== e[n]);
  return i >= 0 ? `row ${i}: ${a[i]} but Kusto gave ${e[i]}` : undefined;
}
