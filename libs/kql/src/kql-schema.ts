import type { KustoType } from "@spillway/kusto";

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
