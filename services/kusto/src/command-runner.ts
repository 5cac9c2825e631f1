import { ErrorCode, invalidArgument, failedPrecondition, notFound, SpillwayError } from "@spillway/errors";
import type { Command, CommandBody, CommandColumn, ExternalTablePartition, KqlSchema, PathFormatPart } from "@spillway/kql";
import { durationFromMs, parseKustoType, parseTimespan } from "@spillway/kusto";
import type { ExternalTable, Table } from "@spillway/proto";
import { exportProperties, externalTableProperties, ingestFromQueryProperties, ingestFromStorageProperties, ingestProperties, oneShotExportProperties, tableProperties } from "./command-properties.js";
import {
  ARTIFACTS,
  artifactRow,
  CANCELED_OPERATION,
  canceledOperationRow,
  INGESTED_FROM_QUERY,
  OPERATIONS,
  operationRow,
  CONTINUOUS_EXPORT,
  DROPPED_EXTERNAL_TABLE,
  EXPORT_OPERATION,
  EXPORTED,
  EXTERNAL_TABLE,
  externalTableRow,
  exportRow,
  failureRow,
  FAILURES,
  INGESTED,
  ingestedRow,
  POLICY,
  policyRow,
  principalRow,
  PRINCIPALS,
  REMAINING_TABLES,
  resultOf,
  SHOWN_EXTERNAL_TABLE,
  TABLE_SCHEMA,
  tableRow,
  TABLES,
} from "./command-results.js";
import type { CommandCalls } from "./inner-calls.js";
import type { ResultTable } from "./result-table.js";

/** What one command runs against: the calls it makes, for whom, in which database, and the schema it was parsed with. */
export interface CommandContext {
  calls: CommandCalls;
  database: string;
  /** The principal of the Execute call; Kusto makes the creator of a table its admin. */
  principal: string;
  schema: KqlSchema;
}

// The columns every external-table row holds; each command shows its own subset (command-results.ts).
const EXTERNAL_TABLE_ALL = [...EXTERNAL_TABLE, ...DROPPED_EXTERNAL_TABLE.filter((c) => !EXTERNAL_TABLE.some((x) => x.name === c.name))];

const is = (err: unknown, code: ErrorCode) => err instanceof SpillwayError && err.code === code;

/**
 * Runs a parsed management command as the RPCs it stands for (one code path with the API:
 * the catalog's and query service's clients, never their stores) and answers Kusto's result
 * table. Whatever the parser let through but Spillway would not do as asked (unknown `with`
 * properties, an `over` table that does not exist, ...) is refused before any call, so a
 * refused command changes nothing.
 */
export async function runCommand(command: Command, ctx: CommandContext): Promise<ResultTable> {
  const { calls, database } = ctx;
  const c: CommandBody = command;
  checkNamesRead(c);
  switch (c.kind) {
    case "createTable":
      return createTable(c, ctx);
    case "dropTable": {
      try {
        await calls.catalog("dropTable", { database, name: c.table });
      } catch (err) {
        if (!(c.ifExists && is(err, ErrorCode.notFound))) throw err;
      }
      return visibleTables(ctx, REMAINING_TABLES);
    }
    case "showTables": {
      const result = await visibleTables(ctx, TABLES);
      return c.tables.length ? { ...result, rows: result.rows.filter((r) => c.tables.includes(r.TableName as string)) } : result;
    }
    case "showTableSchemaAsJson": {
      const { response } = await calls.catalog("getTable", { database, name: c.table });
      return resultOf(TABLE_SCHEMA, [tableRow(response.table!)]);
    }
    case "setTableIngestionTimePolicy": {
      const { response } = await calls.catalog("setIngestionTimePolicy", { database, table: c.table, enabled: c.enabled });
      return resultOf(POLICY, [policyRow(response.table!)]);
    }
    case "createExternalTable":
      return createExternalTable(c, ctx);
    case "dropExternalTable": {
      // Read first: the command answers the table it dropped (drop-external-table). Read as the
      // caller, so one who may not see it learns nothing of it (not even that it exists).
      const { externalTable } = (await calls.catalog("getExternalTable", { database, name: c.name })).response;
      await calls.catalog("dropExternalTable", { database, name: c.name });
      return resultOf(DROPPED_EXTERNAL_TABLE, [externalTableRow(externalTable!)], EXTERNAL_TABLE_ALL);
    }
    case "showExternalTables": {
      const { response, caller } = await calls.catalog("listExternalTables", { database });
      const visible = response.externalTables.filter((t) => calls.may(caller, "getExternalTable", { database, name: t.name }));
      return resultOf(SHOWN_EXTERNAL_TABLE, visible.map(externalTableRow), EXTERNAL_TABLE_ALL);
    }
    case "showExternalTable": {
      const { response } = await calls.catalog("getExternalTable", { database, name: c.name });
      return resultOf(SHOWN_EXTERNAL_TABLE, [externalTableRow(response.externalTable!)], EXTERNAL_TABLE_ALL);
    }
    case "createOrAlterContinuousExport": {
      for (const table of c.over) {
        // Kusto's names are case-sensitive; the parser leaves `over` unchecked.
        if (!ctx.schema.tables.some((t) => t.name === table)) {
          throw invalidArgument(`continuous export '${c.name}': over names table '${table}', which does not exist in database '${database}'`);
        }
      }
      const properties = exportProperties(c.properties);
      const { response } = await calls.catalog("createOrAlterContinuousExport", {
        database,
        name: c.name,
        externalTable: c.externalTable,
        query: c.queryText,
        queryLanguage: "kql",
        over: c.over,
        properties,
      });
      return resultOf(CONTINUOUS_EXPORT, [exportRow(response.export!)]);
    }
    case "exportToTable": {
      const { response } = await calls.queryService("exportToTable", {
        database,
        externalTable: c.externalTable,
        query: c.queryText,
        queryLanguage: "kql",
        async: c.async,
        properties: oneShotExportProperties(c.properties),
      });
      if (c.async) return resultOf(EXPORT_OPERATION, [{ OperationId: response.operationId }]);
      return resultOf(EXPORTED, response.artifacts.map((a) => ({ ExternalTableName: a.externalTableName, Path: a.path, NumRecords: a.numRecords })));
    }
    case "showContinuousExports": {
      const { response } = await calls.catalog("listContinuousExports", { database });
      return resultOf(CONTINUOUS_EXPORT, response.exports.map(exportRow));
    }
    case "showContinuousExport": {
      const { response } = await calls.catalog("showContinuousExport", { database, name: c.name });
      return resultOf(CONTINUOUS_EXPORT, [exportRow(response.export!)]);
    }
    case "showContinuousExportArtifacts": {
      const { response } = await calls.catalog("showExportedArtifacts", { database, name: c.name });
      return resultOf(ARTIFACTS, response.artifacts.map(artifactRow));
    }
    case "showContinuousExportFailures": {
      const { response } = await calls.catalog("showFailures", { database, name: c.name });
      return resultOf(FAILURES, response.failures.map(failureRow));
    }
    case "enableContinuousExport":
    case "disableContinuousExport": {
      const method = c.kind === "enableContinuousExport" ? "enableContinuousExport" : "disableContinuousExport";
      const { response } = await calls.catalog(method, { database, name: c.name });
      return resultOf(CONTINUOUS_EXPORT, [exportRow(response.export!)]);
    }
    case "dropContinuousExport": {
      await calls.catalog("dropContinuousExport", { database, name: c.name });
      // The exports that remain (drop-continuous-export); a Database Admin may see them all.
      const { exports } = await calls.asSpillway.listContinuousExports({ database });
      return resultOf(CONTINUOUS_EXPORT, exports.map(exportRow));
    }
    case "ingestInline": {
      const { format, ignoreFirstRecord, ingestByTags, ingestIfNotExists } = ingestProperties(c.properties);
      const { response } = await calls.queryService("ingest", { database, table: c.table, format, payload: new TextEncoder().encode(c.data), ignoreFirstRecord, ingestByTags, ingestIfNotExists });
      return resultOf(INGESTED, [ingestedRow(response.extentId)]);
    }
    case "ingestFromStorage": {
      const { response } = await calls.queryService("ingestFromStorage", { database, table: c.table, uris: c.uris, ...ingestFromStorageProperties(c.properties) });
      return resultOf(INGESTED, [ingestedRow(response.extentId)]);
    }
    case "ingestFromQuery": {
      // Kusto may run these as an operation; here the answer waits for the extent, which is what async would report.
      if (c.async) throw invalidArgument(`.${c.mode} async is not supported; run it without async, it answers once the rows are in`);
      const { response } = await calls.queryService("ingestFromQuery", { database, table: c.table, query: c.queryText, queryLanguage: "kql", mode: c.mode, ...ingestFromQueryProperties(c.properties, `.${c.mode}`) });
      return resultOf(INGESTED_FROM_QUERY, [{ ...ingestedRow(response.extentId), RowCount: response.rowCount }]);
    }
    case "showOperations": {
      const { response } = await calls.queryService("showOperations", { database, operationId: c.operationId });
      return resultOf(OPERATIONS, response.operations.map(operationRow));
    }
    case "showOperationDetails": {
      const { response } = await calls.queryService("showOperationDetails", { database, operationId: c.operationId });
      return resultOf(EXPORTED, response.artifacts.map((a) => ({ ExternalTableName: a.externalTableName, Path: a.path, NumRecords: a.numRecords })));
    }
    case "cancelOperation": {
      const { response } = await calls.queryService("cancelOperation", { database, operationId: c.operationId });
      return resultOf(CANCELED_OPERATION, [canceledOperationRow(response.operation!)]);
    }
    case "addDatabaseRole":
    case "dropDatabaseRole": {
      const target = c.database || database;
      const { response } =
        c.kind === "addDatabaseRole"
          ? await calls.catalog("addDatabasePrincipals", { database: target, role: c.role, principals: c.principals, notes: c.notes ?? "" })
          : await calls.catalog("dropDatabasePrincipals", { database: target, role: c.role, principals: c.principals });
      return resultOf(PRINCIPALS, response.principals.map(principalRow));
    }
    case "showDatabasePrincipals": {
      const { response } = await calls.catalog("showDatabasePrincipals", { database: c.database || database });
      return resultOf(PRINCIPALS, response.principals.map(principalRow));
    }
    case "addTableRole":
    case "dropTableRole": {
      const { response } =
        c.kind === "addTableRole"
          ? await calls.catalog("addTablePrincipals", { database, table: c.table, role: c.role, principals: c.principals, notes: c.notes ?? "" })
          : await calls.catalog("dropTablePrincipals", { database, table: c.table, role: c.role, principals: c.principals });
      return resultOf(PRINCIPALS, response.principals.map(principalRow));
    }
    case "showTablePrincipals": {
      const { response } = await calls.catalog("showTablePrincipals", { database, table: c.table });
      return resultOf(PRINCIPALS, response.principals.map(principalRow));
    }
    default: {
      const unknown: never = c;
      throw invalidArgument(`command ${(unknown as { kind: string }).kind} is not supported`);
    }
  }
}

/**
 * Every name the command gives was read: an empty one (a form of name the reader of the
 * parser's tree does not take apart) is refused rather than run as another command, e.g.
 * `.show tables ('')` showing nothing.
 */
function checkNamesRead(c: CommandBody): void {
  const names: unknown[] = [];
  const record = c as Record<string, unknown>;
  for (const key of ["table", "name", "externalTable"]) if (key in record) names.push(record[key]);
  for (const key of ["tables", "over"]) if (Array.isArray(record[key])) names.push(...(record[key] as unknown[]));
  for (const key of ["columns", "partitions"]) if (Array.isArray(record[key])) names.push(...(record[key] as Array<{ name: unknown }>).map((x) => x.name));
  if (names.some((n) => typeof n !== "string" || n === "")) {
    throw invalidArgument(`${c.kind}: a name of the command could not be read; write names plainly (letters, digits, '_', '-', '.')`);
  }
}

/** The tables of the database the caller may see one by one (as GetTable would let it), in the given columns. */
async function visibleTables(ctx: CommandContext, columns: typeof TABLES): Promise<ResultTable> {
  const { calls, database } = ctx;
  const { response, caller } = await calls.catalog("listTables", { database });
  const visible = response.tables.filter((t) => calls.may(caller, "getTable", { database, name: t.name }));
  return resultOf(columns, visible.map(tableRow), TABLE_SCHEMA);
}

/**
 * The table, read as the caller: what a command learns of a table before its own RPC (a
 * merge's column check) is what the caller may see, or the caller is refused (no schema, nor
 * whether the table exists, to one without a role).
 */
async function tableIfExists(ctx: CommandContext, name: string): Promise<Table | undefined> {
  try {
    return (await ctx.calls.catalog("getTable", { database: ctx.database, name })).response.table;
  } catch (err) {
    if (is(err, ErrorCode.notFound)) return undefined;
    throw err;
  }
}

/**
 * `.create-merge table` may only add columns (create-merge-table-command): one already in the
 * table with another type fails the command. Spillway cannot add columns to a table that
 * exists, so a merge that would is refused too, and changes nothing.
 */
function checkMergeable(table: Table, columns: CommandColumn[]): void {
  const where = `.create-merge table ${table.name}`;
  const missing: string[] = [];
  for (const c of columns) {
    const existing = table.columns.find((x) => x.name === c.name);
    if (!existing) missing.push(c.name);
    else if (parseKustoType(existing.type, where) !== parseKustoType(c.type, where)) {
      throw invalidArgument(`${where}: column '${c.name}' is ${existing.type} in the table, not ${c.type}`);
    }
  }
  if (missing.length) {
    throw failedPrecondition(`${where}: the table exists without column(s) ${missing.join(", ")}, and Spillway cannot add columns to a table; nothing changed`);
  }
}

/**
 * `.create table` and `.create-merge table`. A table that exists with the name is success
 * without change (create-table-command's note), answered with its schema as it is.
 */
async function createTable(c: Extract<CommandBody, { kind: "createTable" }>, ctx: CommandContext): Promise<ResultTable> {
  const { calls, database } = ctx;
  const { docString } = tableProperties(c.properties);
  if (c.merge) {
    const existing = await tableIfExists(ctx, c.table);
    if (existing) checkMergeable(existing, c.columns);
  }
  let table: Table;
  try {
    ({ table } = (await calls.catalog("createTable", { database, name: c.table, columns: c.columns, docString })).response as { table: Table });
    await grantCreator(ctx, table.name);
  } catch (err) {
    if (!is(err, ErrorCode.alreadyExists)) throw err;
    // The name may be an external table's: then the refusal stands.
    const existing = await tableIfExists(ctx, c.table);
    if (!existing) throw err;
    if (c.merge) checkMergeable(existing, c.columns);
    table = existing;
  }
  return resultOf(TABLE_SCHEMA, [tableRow(table)]);
}

/**
 * Kusto makes a table's creator its admin. The catalog does so for a direct call; here the
 * call comes from Spillway, so the command grants it, as the catalog would have.
 */
async function grantCreator(ctx: CommandContext, table: string): Promise<void> {
  if (!/^(aaduser|aadapp)=/i.test(ctx.principal)) return;
  await ctx.calls.asSpillway.addTablePrincipals({ database: ctx.database, table, role: "admins", principals: [ctx.principal], notes: "created the table" });
}

/** The external table, read as the caller (see tableIfExists). */
async function externalTableIfExists(ctx: CommandContext, name: string): Promise<ExternalTable | undefined> {
  try {
    return (await ctx.calls.catalog("getExternalTable", { database: ctx.database, name })).response.externalTable;
  } catch (err) {
    if (is(err, ErrorCode.notFound)) return undefined;
    throw err;
  }
}

/**
 * `.create`, `.alter` and `.create-or-alter external table`. An alter needs Table Admin of the
 * table; a create Database User and makes the caller its admin. A create-or-alter of a table
 * that does not exist runs as CreateExternalTable, so one created meanwhile by someone else
 * is refused rather than altered by a caller who may only create.
 */
async function createExternalTable(c: Extract<CommandBody, { kind: "createExternalTable" }>, ctx: CommandContext): Promise<ResultTable> {
  const { calls, database } = ctx;
  const request = {
    database,
    name: c.name,
    kind: c.tableKind === "storage" ? "blob" : "delta",
    dataFormat: c.dataFormat,
    columns: c.columns,
    partitions: c.partitions.map(partitionOf),
    pathFormat: pathFormatText(c.pathFormat),
    connectionStrings: c.connectionStrings,
    properties: externalTableProperties(c.properties),
  };
  const exists = c.mode === "create" ? false : (await externalTableIfExists(ctx, c.name)) !== undefined;
  if (c.mode === "alter" && !exists) throw notFound(`external table '${c.name}' does not exist in database '${database}'`);
  let table: ExternalTable;
  if (exists) {
    table = (await calls.catalog("createOrAlterExternalTable", request, { alters: true })).response.externalTable!;
  } else {
    table = (await calls.catalog("createExternalTable", request)).response.externalTable!;
    await grantCreator(ctx, table.name);
  }
  return resultOf(EXTERNAL_TABLE, [externalTableRow(table)], EXTERNAL_TABLE_ALL);
}

function partitionOf(p: ExternalTablePartition) {
  return {
    name: p.name,
    type: p.type,
    function: "function" in p && p.function ? p.function : "",
    column: p.column ?? "",
    modulo: "modulo" in p ? BigInt(p.modulo) : 0n,
    binSize: "bin" in p && p.bin !== undefined ? durationFromMs(parseTimespan(p.bin, `partition ${p.name}: bin size`)) : undefined,
  };
}

/** The path format as the catalog reads it (libs/kusto path-format.ts): quoted separators, names, datetime_pattern(...). */
function pathFormatText(parts: PathFormatPart[]): string {
  return parts
    .map((p) => {
      switch (p.kind) {
        case "separator":
          return JSON.stringify(p.text);
        case "partition":
          return p.name;
        case "datetimePattern":
          return `datetime_pattern(${JSON.stringify(p.format)}, ${p.name})`;
      }
    })
    .join(" ");
}
