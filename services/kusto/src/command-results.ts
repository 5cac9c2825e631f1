// The result tables of Kusto's management commands, built from what the RPCs answer. Column
// names, types and order follow Kusto's documentation (learn.microsoft.com/kusto/management/...,
// each list names its page); where a page shows none, the result type Microsoft's parser
// gives the command.
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import type { KqlColumn } from "@spillway/kql";
import { parseKustoType, type KustoType } from "@spillway/kusto";
import type { ContinuousExport, ExportedArtifact, ExportFailure, ExternalTable, Operation, PrincipalRow, Table } from "@spillway/proto";
import { col, type Cell, type ResultTable } from "./result-table.js";

/** `.show tables` (show-tables-command). */
export const TABLES = [col("TableName"), col("DatabaseName"), col("Folder"), col("DocString")];
/** `.show table T schema as json` (show-table-schema-command); `.create table` answers the same (create-table-command). */
export const TABLE_SCHEMA = [col("TableName"), col("Schema"), col("DatabaseName"), col("Folder"), col("DocString")];
/** `.drop table`: the tables that remain (drop-table-command). */
export const REMAINING_TABLES = [col("TableName"), col("DatabaseName")];
/** A policy as the `.alter ... policy` commands answer it (e.g. alter-auto-delete-policy-command). */
export const POLICY = [col("PolicyName"), col("EntityName"), col("Policy"), col("ChildEntities"), col("EntityType")];
/** `.create|.alter|.create-or-alter external table` (external-tables-azure-storage, its sample output). */
export const EXTERNAL_TABLE = [
  col("TableName"), col("TableType"), col("Folder"), col("DocString"), col("Properties"),
  col("ConnectionStrings", "dynamic"), col("Partitions", "dynamic"), col("PathFormat"),
];
/** `.show external tables`, `.show external table T` (show-external-tables). */
export const SHOWN_EXTERNAL_TABLE = [col("TableName"), col("TableType"), col("Folder"), col("DocString"), col("Properties")];
/** `.drop external table` (drop-external-table). */
export const DROPPED_EXTERNAL_TABLE = [col("TableName"), col("TableType"), col("Folder"), col("DocString"), col("Schema"), col("Properties")];
/**
 * `.show continuous-export(s)` and the commands that answer as it. The order is the one
 * create-alter-continuous's example output shows (and the parser's); show-continuous-export
 * lists the same columns alphabetically, as a table of parameters.
 */
export const CONTINUOUS_EXPORT = [
  col("Name"), col("ExternalTableName"), col("Query"), col("ForcedLatency", "timespan"), col("IntervalBetweenRuns", "timespan"),
  col("CursorScopedTables"), col("ExportProperties"), col("LastRunTime", "datetime"), col("StartCursor"), col("IsDisabled", "bool"),
  col("LastRunResult"), col("ExportedTo", "datetime"), col("IsRunning", "bool"),
];
/** `.show continuous-export E exported-artifacts` (show-continuous-artifacts: its example has SizeInBytes, SPEC §4 too). */
export const ARTIFACTS = [col("Timestamp", "datetime"), col("ExternalTableName"), col("Path"), col("NumRecords", "long"), col("SizeInBytes", "long")];
/** `.show continuous-export E failures` (show-continuous-failures). */
export const FAILURES = [col("Timestamp", "datetime"), col("OperationId"), col("Name"), col("LastSuccessRun", "datetime"), col("FailureKind"), col("Details")];
/** `.ingest inline`: one row per extent made, or one with the zero id when none was (ingest-inline). */
export const INGESTED = [col("ExtentId", "guid")];
/** `.export to table`: what a sync export wrote; an async one answers its operation. */
export const EXPORTED = [col("ExternalTableName"), col("Path"), col("NumRecords", "long")];
export const EXPORT_OPERATION = [col("OperationId", "guid")];
/** `.append`, `.set-or-append`, `.set-or-replace`: the extent made and its rows. */
export const INGESTED_FROM_QUERY = [col("ExtentId", "guid"), col("RowCount", "long")];
/** `.show operations` (show-operations; the columns Spillway has). */
export const OPERATIONS = [
  col("OperationId", "guid"), col("Operation"), col("NodeId"), col("StartedOn", "datetime"), col("LastUpdatedOn", "datetime"),
  col("Duration", "timespan"), col("State"), col("Status"), col("Database"),
];
/** `.cancel operation` (cancel-operation-command). */
export const CANCELED_OPERATION = [col("OperationId", "guid"), col("Operation"), col("StartedOn", "datetime"), col("CancellationState"), col("ReasonPhrase")];
/** `.show|.add|.drop database|table ... principals|<role>` (manage-database-security-roles; Notes as cluster-follower shows it). */
export const PRINCIPALS = [col("Role"), col("PrincipalType"), col("PrincipalDisplayName"), col("PrincipalObjectId"), col("PrincipalFQN"), col("Notes")];

const NO_EXTENT = "00000000-0000-0000-0000-000000000000";

/** A result whose rows hold `columns` and, for a pipe, `extra`. */
export function resultOf(columns: KqlColumn[], rows: Array<Record<string, Cell>>, all: KqlColumn[] = columns): ResultTable {
  return { columns, extra: all.filter((c) => !columns.some((x) => x.name === c.name)), rows };
}

/** Microseconds of a Timestamp (since the Unix epoch) or a Duration: both are seconds and nanos. */
const microsOf = (t: Timestamp | Duration) => t.seconds * 1_000_000n + BigInt(Math.trunc(t.nanos / 1000));

function microsOfTimestamp(t: Timestamp | undefined): bigint | null {
  return t ? microsOf(t) : null;
}

function microsOfDuration(d: Duration | undefined): bigint {
  return d ? microsOf(d) : 0n;
}

// Kusto's .NET type names in JSON schemas (e.g. app-management-commands' `.show table schema as json`).
const DOTNET_TYPE: Record<KustoType, string> = {
  bool: "System.Boolean",
  int: "System.Int32",
  long: "System.Int64",
  real: "System.Double",
  decimal: "System.Data.SqlTypes.SqlDecimal",
  string: "System.String",
  datetime: "System.DateTime",
  timespan: "System.TimeSpan",
  guid: "System.Guid",
  dynamic: "System.Object",
};

export function tableRow(t: Table): Record<string, Cell> {
  const schema = {
    Name: t.name,
    OrderedColumns: t.columns.map((c) => ({ Name: c.name, Type: DOTNET_TYPE[parseKustoType(c.type, `table '${t.name}'`)], CslType: c.type })),
  };
  return { TableName: t.name, Schema: JSON.stringify(schema), DatabaseName: t.database, Folder: "", DocString: t.docString };
}

export function policyRow(t: Table): Record<string, Cell> {
  return {
    PolicyName: "IngestionTimePolicy",
    EntityName: `[${t.database}].[${t.name}]`,
    Policy: JSON.stringify({ IsEnabled: t.ingestionTimePolicy }),
    ChildEntities: "",
    EntityType: "Table",
  };
}

const FORMAT_TITLE: Record<string, string> = { csv: "Csv", tsv: "Tsv", json: "Json", parquet: "Parquet" };
const HEADERS_TITLE: Record<string, string> = { none: "None", all: "All", firstFile: "FirstFile" };
const FUNCTION_TITLE: Record<string, string> = {
  startofday: "StartOfDay",
  startofweek: "StartOfWeek",
  startofmonth: "StartOfMonth",
  startofyear: "StartOfYear",
  bin: "Bin",
};
const orNull = (s: string) => (s === "" ? null : s);

/** Every column an external-table command may show: Properties, Partitions etc. as the sample output of external-tables-azure-storage writes them. */
export function externalTableRow(t: ExternalTable): Record<string, Cell> {
  const p = t.properties;
  const properties = {
    Format: FORMAT_TITLE[t.dataFormat] ?? t.dataFormat,
    Compressed: p?.compressed ?? false,
    CompressionType: orNull(p?.compressionType ?? ""),
    FileExtension: orNull(p?.fileExtension ?? ""),
    IncludeHeaders: p?.includeHeaders ? (HEADERS_TITLE[p.includeHeaders] ?? p.includeHeaders) : null,
    Encoding: orNull(p?.encoding ?? ""),
    NamePrefix: orNull(p?.namePrefix ?? ""),
  };
  const partitions = t.partitions.map((x, ordinal) => ({
    ...(x.function === "hash" ? { Mod: Number(x.modulo) } : x.function ? { Function: FUNCTION_TITLE[x.function] ?? x.function } : {}),
    Name: x.name,
    ...(x.column ? { ColumnName: x.column } : {}),
    ...(x.function === "bin" ? { BinSize: timespanText(microsOfDuration(x.binSize)) } : {}),
    Ordinal: ordinal,
  }));
  return {
    TableName: t.name,
    TableType: t.kind === "delta" ? "Delta" : "Blob",
    Folder: p?.folder ?? "",
    DocString: p?.docString ?? "",
    Properties: JSON.stringify(properties),
    // Shown as the catalog shows them: secrets masked.
    ConnectionStrings: [...t.connectionStrings],
    Partitions: partitions,
    PathFormat: t.pathFormat,
    Schema: JSON.stringify(t.columns.map((c) => ({ Name: c.name, CslType: c.type }))),
  };
}

/** A timespan as Kusto writes it: [-][d.]hh:mm:ss[.fffffff]. */
function timespanText(micros: bigint): string {
  const sign = micros < 0n ? "-" : "";
  let us = micros < 0n ? -micros : micros;
  const days = us / 86_400_000_000n;
  us %= 86_400_000_000n;
  const pad = (n: bigint) => n.toString().padStart(2, "0");
  const hms = `${pad(us / 3_600_000_000n)}:${pad((us / 60_000_000n) % 60n)}:${pad((us / 1_000_000n) % 60n)}`;
  const fraction = us % 1_000_000n === 0n ? "" : `.${(us % 1_000_000n).toString().padStart(6, "0")}0`;
  return `${sign}${days > 0n ? `${days}.` : ""}${hms}${fraction}`;
}

export function exportRow(e: ContinuousExport): Record<string, Cell> {
  const p = e.exportProperties;
  // The other properties have columns of their own (create-alter-continuous's example shows {"SizeLimit": ...}).
  const properties: Record<string, string | number | boolean> = {};
  if (p) {
    properties.SizeLimit = Number(p.sizeLimit);
    if (p.distributed !== undefined) properties.Distributed = p.distributed;
    if (p.parquetRowGroupSize) properties.ParquetRowGroupSize = p.parquetRowGroupSize;
    if (p.useNativeParquetWriter !== undefined) properties.UseNativeParquetWriter = p.useNativeParquetWriter;
    if (p.managedIdentity) properties.ManagedIdentity = p.managedIdentity;
  }
  const latency = microsOfDuration(e.forcedLatency);
  return {
    Name: e.name,
    ExternalTableName: e.externalTableName,
    Query: e.query,
    // "null if not provided" (show-continuous-export).
    ForcedLatency: latency === 0n ? null : latency,
    IntervalBetweenRuns: microsOfDuration(e.intervalBetweenRuns),
    CursorScopedTables: JSON.stringify(e.cursorScopedTables.map((t) => `['${e.database}'].['${t}']`)),
    ExportProperties: JSON.stringify(properties),
    LastRunTime: microsOfTimestamp(e.lastRunTime),
    StartCursor: e.startCursor,
    IsDisabled: e.isDisabled,
    LastRunResult: e.lastRunResult,
    ExportedTo: microsOfTimestamp(e.exportedTo),
    IsRunning: e.isRunning,
  };
}

export function artifactRow(a: ExportedArtifact): Record<string, Cell> {
  return { Timestamp: microsOfTimestamp(a.timestamp), ExternalTableName: a.externalTableName, Path: a.path, NumRecords: a.numRecords, SizeInBytes: a.sizeInBytes };
}

export function failureRow(f: ExportFailure): Record<string, Cell> {
  return {
    Timestamp: microsOfTimestamp(f.timestamp),
    OperationId: f.operationId,
    Name: f.name,
    LastSuccessRun: microsOfTimestamp(f.lastSuccessRun),
    FailureKind: f.failureKind,
    Details: f.details,
  };
}

export function operationRow(o: Operation): Record<string, Cell> {
  return {
    OperationId: o.operationId,
    Operation: o.operation,
    NodeId: o.nodeId,
    StartedOn: microsOfTimestamp(o.startedOn),
    LastUpdatedOn: microsOfTimestamp(o.lastUpdatedOn),
    Duration: microsOfDuration(o.duration),
    State: o.state,
    Status: o.status,
    Database: o.database,
  };
}

/** An operation as `.cancel operation` left it: asked to stop, canceled, or ended before. */
export function canceledOperationRow(o: Operation): Record<string, Cell> {
  const ended = o.state === "Completed" || o.state === "Failed";
  return {
    OperationId: o.operationId,
    Operation: o.operation,
    StartedOn: microsOfTimestamp(o.startedOn),
    CancellationState: o.state === "InProgress" ? "Cancellation Requested" : o.state,
    ReasonPhrase: ended ? "the operation had already ended" : "",
  };
}

export function ingestedRow(extentId: string): Record<string, Cell> {
  return { ExtentId: extentId || NO_EXTENT };
}

export function principalRow(p: PrincipalRow): Record<string, Cell> {
  return {
    Role: p.role,
    PrincipalType: p.principalType,
    PrincipalDisplayName: p.principalDisplayName,
    PrincipalObjectId: p.principalObjectId,
    PrincipalFQN: p.principalFqn,
    Notes: p.notes,
  };
}
