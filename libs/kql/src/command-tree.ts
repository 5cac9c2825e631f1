import type { KqlColumn } from "./kql-schema.js";
import type { TabularExpr } from "./query-tree.js";

/** A column as written in a command: the type is Kusto's spelling, checked by the domain code. */
export interface CommandColumn {
  name: string;
  type: string;
}

/**
 * `with (...)` properties. String literals give their value; anything else (timespans,
 * numbers, booleans, identifiers) gives its text as written, e.g. `10m`, `true`.
 */
export type CommandProperties = Record<string, string>;

export type DatabaseRole = "admins" | "ingestors" | "monitors" | "unrestrictedviewers" | "users" | "viewers";
export type TableRole = "admins" | "ingestors";

export type ExternalTablePartition =
  | { name: string; type: "string"; column?: string }
  | { name: string; type: "datetime"; column?: string; function?: "bin" | "startofday" | "startofweek" | "startofmonth" | "startofyear"; bin?: string }
  | { name: string; type: "long"; column: string; function: "hash"; modulo: number };

export type PathFormatPart =
  | { kind: "separator"; text: string }
  | { kind: "partition"; name: string }
  | { kind: "datetimePattern"; format: string; name: string };

export type CommandBody =
  | { kind: "createTable"; merge: boolean; table: string; columns: CommandColumn[]; properties: CommandProperties }
  | { kind: "dropTable"; table: string; ifExists: boolean }
  | { kind: "showTables"; tables: string[] }
  | { kind: "showTableSchemaAsJson"; table: string }
  | { kind: "setTableIngestionTimePolicy"; table: string; enabled: boolean }
  | {
      kind: "createExternalTable"; mode: "create" | "alter" | "createOrAlter"; name: string; tableKind: "storage" | "delta";
      columns: CommandColumn[]; partitions: ExternalTablePartition[]; pathFormat: PathFormatPart[];
      dataFormat: string; connectionStrings: string[]; properties: CommandProperties;
    }
  | { kind: "dropExternalTable"; name: string }
  | { kind: "showExternalTables" }
  | { kind: "showExternalTable"; name: string }
  | {
      kind: "createOrAlterContinuousExport"; name: string; over: string[]; externalTable: string; properties: CommandProperties;
      /** The query after `<|`, as written and as typed by the parser. */
      queryText: string; query: TabularExpr; queryTables: string[]; queryColumns: KqlColumn[];
    }
  | {
      kind: "exportToTable"; async: boolean; externalTable: string; properties: CommandProperties;
      /** The query after `<|`, as written and as typed by the parser. */
      queryText: string; query: TabularExpr; queryTables: string[]; queryColumns: KqlColumn[];
    }
  | { kind: "showContinuousExports" }
  | { kind: "showContinuousExport"; name: string }
  | { kind: "showContinuousExportArtifacts"; name: string }
  | { kind: "showContinuousExportFailures"; name: string }
  | { kind: "enableContinuousExport" | "disableContinuousExport" | "dropContinuousExport"; name: string }
  | { kind: "ingestInline"; table: string; properties: CommandProperties; data: string }
  /** `.ingest into table T (h'uri', ...) with (...)`: ingestion by reference. */
  | { kind: "ingestFromStorage"; table: string; uris: string[]; properties: CommandProperties }
  /** `.append`, `.set-or-append`, `.set-or-replace [async] T [with (...)] <| query`; the query as written. */
  | { kind: "ingestFromQuery"; mode: "append" | "set-or-append" | "set-or-replace"; async: boolean; table: string; properties: CommandProperties; queryText: string }
  | { kind: "showOperations"; operationId: string }
  | { kind: "showOperationDetails"; operationId: string }
  | { kind: "cancelOperation"; operationId: string }
  | { kind: "addDatabaseRole" | "dropDatabaseRole"; database: string; role: DatabaseRole; principals: string[]; notes?: string }
  | { kind: "showDatabasePrincipals"; database: string }
  | { kind: "addTableRole" | "dropTableRole"; table: string; role: TableRole; principals: string[]; notes?: string }
  | { kind: "showTablePrincipals"; table: string };

/**
 * A management command. `pipe` is what followed it after `|`: a KQL query over the
 * command's result table, which it reads as the relation named COMMAND_RESULT.
 */
export type Command = CommandBody & { pipe?: { query: TabularExpr; inputColumns: KqlColumn[]; columns: KqlColumn[] } };

/** The relation name a command's pipe query reads its command's result from. */
export const COMMAND_RESULT = "$command";
