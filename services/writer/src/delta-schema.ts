import { failedPrecondition } from "@spillway/errors";
import { parseKustoType, type KustoType } from "@spillway/kusto";

// Kusto types in the Delta/Spark schema JSON (delta-io PROTOCOL.md, "Schema Serialization
// Format"), as the Parquet data files store them (SPEC §5: timespans as INT64 ticks,
// guid and dynamic as strings).
const DELTA_TYPES: Record<KustoType, string> = {
  bool: "boolean",
  int: "integer",
  long: "long",
  real: "double",
  decimal: "decimal(38,18)",
  string: "string",
  datetime: "timestamp",
  timespan: "long",
  guid: "string",
  dynamic: "string",
};

export interface DeltaField {
  name: string;
  type: string;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

/** The schemaString of a Delta table with these columns (partition columns included). */
export function deltaSchemaString(columns: ReadonlyArray<{ name: string; type: string }>): string {
  const fields: DeltaField[] = columns.map((c) => ({ name: c.name, type: DELTA_TYPES[parseKustoType(c.type, `column '${c.name}'`)], nullable: true, metadata: {} }));
  return JSON.stringify({ type: "struct", fields });
}

/** Kusto columns from an existing Delta table's schema (to infer an external table's schema). */
export function columnsFromDeltaSchema(schemaString: string): Array<{ name: string; type: KustoType }> {
  const schema = JSON.parse(schemaString) as { fields: Array<{ name: string; type: unknown }> };
  return schema.fields.map((f) => {
    const t = typeof f.type === "string" ? f.type : "";
    const kusto = (Object.entries({ boolean: "bool", integer: "int", short: "int", byte: "int", long: "long", double: "real", float: "real", string: "string", timestamp: "datetime", timestamp_ntz: "datetime", date: "datetime" }) as Array<[string, KustoType]>).find(([d]) => d === t)?.[1];
    if (kusto) return { name: f.name, type: kusto };
    if (/^decimal\(/.test(t)) return { name: f.name, type: "decimal" as KustoType };
    throw failedPrecondition(`the Delta table's column '${f.name}' has type ${JSON.stringify(f.type)}, which has no Kusto type`);
  });
}

/** Are two schemaStrings the same columns with the same types (metadata aside)? */
export function sameDeltaSchema(a: string, b: string): boolean {
  const fields = (s: string) => (JSON.parse(s) as { fields: Array<{ name: string; type: unknown }> }).fields.map((f) => `${f.name}:${JSON.stringify(f.type)}`);
  return JSON.stringify(fields(a)) === JSON.stringify(fields(b));
}
