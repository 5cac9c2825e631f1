import { parseKustoType, type KustoType } from "@spillway/kusto";

export interface KqlColumn {
  name: string;
  type: KustoType;
}

export interface KqlTable {
  name: string;
  columns: KqlColumn[];
}

/** What a query or command may see: one database, its tables and external tables. */
export interface KqlSchema {
  database: string;
  tables: KqlTable[];
  externalTables?: KqlTable[];
}

/** A table as the catalog describes it: its columns' types as Kusto type names. */
export interface DescribedTable {
  name: string;
  columns: ReadonlyArray<{ name: string; type: string }>;
}

/** The schema the parser types against, from the catalog's tables (and external tables, for commands). */
export function kqlSchemaOf(database: string, tables: readonly DescribedTable[], externalTables?: readonly DescribedTable[]): KqlSchema {
  const table = (kind: string) => (t: DescribedTable): KqlTable => ({
    name: t.name,
    columns: t.columns.map((c) => ({ name: c.name, type: parseKustoType(c.type, `${kind} '${t.name}'`) })),
  });
  return { database, tables: tables.map(table("table")), ...(externalTables && { externalTables: externalTables.map(table("external table")) }) };
}
