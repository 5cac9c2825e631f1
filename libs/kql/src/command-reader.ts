import { COMMAND_RESULT, type Command, type CommandBody, type CommandColumn, type CommandProperties, type DatabaseRole, type ExternalTablePartition, type PathFormatPart, type TableRole } from "./command-tree.js";
import { UnsupportedKql, UNKNOWN_COMMAND } from "./kql-error.js";
import type { KqlColumn } from "./kql-schema.js";
import { QueryReader } from "./query-reader.js";
import { child, listOf, tokens, type SyntaxDump } from "./syntax-dump.js";

/** A command outside the supported set, or a command form the parser did not recognize. */
export class UnknownCommand extends UnsupportedKql {
  readonly code = UNKNOWN_COMMAND;
}

interface Part {
  role: string;
  node: SyntaxDump;
}

/** The named parts of a command (TableName, PropertyName, ...) and its words, in text order. */
function partsOf(node: SyntaxDump): { parts: Part[]; words: string[] } {
  const parts: Part[] = [];
  const words: string[] = [];
  const walk = (n: SyntaxDump) => {
    for (const c of n.children) {
      if (c.role && c.role !== "Name" && c.role !== "Query") parts.push({ role: c.role, node: c });
      else if (c.text !== undefined) words.push(c.text.toLowerCase());
      else if (c.role !== "Query") walk(c);
    }
  };
  walk(node);
  return { parts, words };
}

function textOf(node: SyntaxDump): string {
  if (node.kind === "StringLiteralExpression" || node.kind === "CompoundStringLiteralExpression") return String(node.literal);
  if (node.kind === "NameDeclaration" || node.kind === "NameReference") {
    const inner = child(node, "Name");
    const token = inner?.kind === "TokenName" ? inner.children[0] : inner?.kind === "BracketedName" ? child(inner, "Name") : inner;
    const t = token?.text ?? "";
    return /^@?['"]/.test(t) ? unquoteName(t) : t;
  }
  return tokens(node).map((t) => t.text).join("");
}

function unquoteName(literal: string): string {
  const body = literal.replace(/^@/, "").slice(1, -1);
  return body;
}

const first = (parts: Part[], role: string) => parts.find((p) => p.role === role)?.node;
const all = (parts: Part[], role: string) => parts.filter((p) => p.role === role).map((p) => p.node);

function need(parts: Part[], role: string, at: SyntaxDump): string {
  const n = first(parts, role);
  if (!n) throw new UnknownCommand(`the command needs ${role}`, at.start);
  return textOf(n);
}

function columns(parts: Part[]): CommandColumn[] {
  const names = all(parts, "ColumnName");
  const types = all(parts, "ColumnType");
  return names.map((n, i) => ({ name: textOf(n), type: textOf(types[i]!) }));
}

function properties(parts: Part[]): CommandProperties {
  const out: CommandProperties = {};
  const names = all(parts, "PropertyName");
  const values = [...all(parts, "PropertyValue"), ...all(parts, "Value")].sort((a, b) => a.start - b.start);
  names.forEach((n, i) => {
    const v = values[i];
    if (v) out[textOf(n)] = textOf(v);
  });
  return out;
}

function principals(parts: Part[]): { principals: string[]; notes?: string } {
  const notes = first(parts, "Notes");
  return { principals: all(parts, "Principal").map(textOf), ...(notes ? { notes: textOf(notes) } : {}) };
}

function partitions(custom: SyntaxDump): ExternalTablePartition[] {
  const out: ExternalTablePartition[] = [];
  const visit = (n: SyntaxDump) => {
    const direct = partsOf({ ...n, children: n.children });
    const name = n.children.find((c) => c.role === "PartitionName");
    if (name && direct.parts.some((p) => p.role === "PartitionType")) {
      const p = direct.parts;
      const type = need(p, "PartitionType", n) as "string" | "datetime" | "long";
      const fn = first(p, "PartitionFunction");
      const column = first(p, "DateTimeColumn") ?? first(p, "StringColumn");
      const bin = first(p, "BinValue");
      const mod = first(p, "HashMod");
      out.push({
        name: textOf(name), type,
        ...(column ? { column: textOf(column) } : {}),
        ...(fn ? { function: textOf(fn) } : {}),
        ...(bin ? { bin: tokens(bin).map((t) => t.text).join("") } : {}),
        ...(mod ? { modulo: Number(textOf(mod)) } : {}),
      } as ExternalTablePartition);
      return;
    }
    n.children.forEach(visit);
  };
  visit(custom);
  return out;
}

function pathFormat(custom: SyntaxDump): PathFormatPart[] {
  const keyword = custom.children.length ? findPathFormat(custom) : undefined;
  if (!keyword) return [];
  const out: PathFormatPart[] = [];
  const visit = (n: SyntaxDump) => {
    for (const c of n.children) {
      if (c.role === "PathSeparator") out.push({ kind: "separator", text: textOf(c) });
      else if (c.role === "PartitionName") out.push({ kind: "partition", name: textOf(c) });
      else if (c.role === "DateTimeFormat") {
        const name = n.children.find((x) => x.role === "PartitionName");
        out.push({ kind: "datetimePattern", format: textOf(c), name: name ? textOf(name) : "" });
        return;
      } else visit(c);
    }
  };
  visit(keyword);
  return out;
}

function findPathFormat(n: SyntaxDump): SyntaxDump | undefined {
  if (n.children.some((c) => c.kind === "PathFormatKeyword")) return n;
  for (const c of n.children) {
    const found = findPathFormat(c);
    if (found) return found;
  }
  return undefined;
}

const DATABASE_ROLES = new Set(["admins", "ingestors", "monitors", "unrestrictedviewers", "users", "viewers"]);

/** Reads the command the parser recognized into Spillway's command union; anything else is refused. */
export function readCommand(root: SyntaxDump, text: string): Command {
  const statements = listOf(root, "Statements");
  const statement = statements[0];
  if (!statement || statements.length !== 1 || statement.kind !== "ExpressionStatement") throw new UnknownCommand("expected one command", root.start);
  let expr = child(statement, "Expression")!;
  const pipeTop = expr.kind === "PipeExpression" ? expr : undefined;
  while (expr.kind === "PipeExpression") expr = child(expr, "Expression")!;
  if (expr.kind !== "CustomCommand" || expr.ref?.kind !== "Command") {
    throw new UnknownCommand(`unknown command: ${text.slice(expr.start, expr.start + 60).split("\n")[0]}`, expr.start);
  }
  const body = readCommandBody(expr.ref.name, expr, text);
  if (!pipeTop) return body;
  if (expr.type?.kind !== "table") throw new UnknownCommand("this command's result cannot be piped", pipeTop.start);
  const inputColumns = expr.type.columns as KqlColumn[];
  const query = new QueryReader(inputColumns).readStatements([statement], statement);
  return { ...body, pipe: { query, inputColumns, columns: query.columns } };
}

function readCommandBody(name: string, command: SyntaxDump, text: string): CommandBody {
  const custom = child(command, "Custom") ?? command;
  const { parts, words } = partsOf(custom);
  const at = command;
  switch (name) {
    case "CreateTable":
    case "CreateMergeTable":
      return { kind: "createTable", merge: name === "CreateMergeTable", table: need(parts, "TableName", at), columns: columns(parts), properties: properties(parts) };
    case "DropTable":
      return { kind: "dropTable", table: need(parts, "TableName", at), ifExists: words.includes("ifexists") };
    case "ShowTables":
      return { kind: "showTables", tables: all(parts, "TableName").map(textOf) };
    case "ShowTableSchemaAsJson":
      return { kind: "showTableSchemaAsJson", table: need(parts, "TableName", at) };
    case "AlterTablePolicyIngestionTime":
      return { kind: "setTableIngestionTimePolicy", table: need(parts, "TableName", at), enabled: true };
    case "DeleteTablePolicyIngestionTime":
      return { kind: "setTableIngestionTimePolicy", table: need(parts, "TableName", at), enabled: false };
    case "CreateStorageExternalTable":
    case "AlterStorageExternalTable":
    case "CreateOrAlterStorageExternalTable": {
      const tableKind = need(parts, "TableKind", at).toLowerCase();
      if (tableKind !== "storage" && tableKind !== "delta") throw new UnknownCommand(`external table kind '${tableKind}' is not supported`, at.start);
      const dataFormat = first(parts, "DataFormatKind");
      return {
        kind: "createExternalTable",
        mode: name.startsWith("CreateOrAlter") ? "createOrAlter" : name.startsWith("Create") ? "create" : "alter",
        name: need(parts, "ExternalTableName", at), tableKind, columns: columns(parts),
        partitions: partitions(custom), pathFormat: pathFormat(custom),
        dataFormat: dataFormat ? textOf(dataFormat).toLowerCase() : tableKind === "delta" ? "parquet" : "",
        connectionStrings: all(parts, "StorageConnectionString").map(textOf),
        properties: properties(parts),
      };
    }
    case "DropExternalTable":
      return { kind: "dropExternalTable", name: need(parts, "ExternalTableName", at) };
    case "ShowExternalTables":
      return { kind: "showExternalTables" };
    case "ShowExternalTable":
      return { kind: "showExternalTable", name: need(parts, "ExternalTableName", at) };
    case "CreateOrAlterContinuousExport":
      return continuousExport(custom, parts, text, at);
    case "ExportToExternalTable": {
      const queryList = findQuery(custom);
      if (!queryList) throw new UnknownCommand(".export to table needs a query after <|", at.start);
      const reader = new QueryReader();
      const query = reader.readStatements(listOf(queryList), queryList);
      return {
        kind: "exportToTable",
        async: words.includes("async"),
        externalTable: need(parts, "ExternalTableName", at),
        properties: properties(parts),
        queryText: text.slice(queryList.start, queryList.end),
        query,
        queryTables: [...reader.tables],
        queryColumns: query.columns,
      };
    }
    case "ShowContinuousExports":
      return { kind: "showContinuousExports" };
    case "ShowContinuousExport":
      return { kind: "showContinuousExport", name: need(parts, "ContinuousExportName", at) };
    case "ShowContinuousExportExportedArtifacts":
      return { kind: "showContinuousExportArtifacts", name: need(parts, "ContinuousExportName", at) };
    case "ShowContinuousExportFailures":
      return { kind: "showContinuousExportFailures", name: need(parts, "ContinuousExportName", at) };
    case "EnableContinuousExport":
      return { kind: "enableContinuousExport", name: need(parts, "ContinuousExportName", at) };
    case "DropContinuousExport":
      return { kind: "dropContinuousExport", name: need(parts, "ContinuousExportName", at) };
    case "DisableContinuousExport":
      // Kusto's grammar spells this part ContinousExportName.
      return { kind: "disableContinuousExport", name: first(parts, "ContinousExportName") ? textOf(first(parts, "ContinousExportName")!) : need(parts, "ContinuousExportName", at) };
    case "IngestInlineIntoTable": {
      const data = first(parts, "Data");
      if (!data) throw new UnknownCommand(".ingest inline needs data after <|", at.start);
      return { kind: "ingestInline", table: need(parts, "TableName", at), properties: properties(parts), data: text.slice(data.start, data.end) };
    }
    case "IngestIntoTable": {
      const uris = all(parts, "Path").map(textOf);
      if (uris.length === 0) throw new UnknownCommand(".ingest into table needs the files to ingest, e.g. (h'https://...')", at.start);
      return { kind: "ingestFromStorage", table: need(parts, "TableName", at), uris, properties: properties(parts) };
    }
    case "AppendTable":
    case "SetOrAppendTable":
    case "SetOrReplaceTable": {
      const query = first(parts, "QueryOrCommand");
      if (!query) throw new UnknownCommand(`.${name === "AppendTable" ? "append" : name === "SetOrAppendTable" ? "set-or-append" : "set-or-replace"} needs a query after <|`, at.start);
      const mode = name === "AppendTable" ? "append" : name === "SetOrAppendTable" ? "set-or-append" : "set-or-replace";
      return { kind: "ingestFromQuery", mode, async: words.includes("async"), table: need(parts, "TableName", at), properties: properties(parts), queryText: text.slice(query.start, query.end) };
    }
    case "ShowOperations": {
      const id = first(parts, "OperationId");
      return { kind: "showOperations", operationId: id ? textOf(id) : "" };
    }
    case "ShowOperationDetails":
      return { kind: "showOperationDetails", operationId: need(parts, "OperationId", at) };
    case "CancelOperation": {
      // Kusto's grammar names this command's operation id part `obj`.
      const id = first(parts, "OperationId") ?? first(parts, "obj");
      if (!id) throw new UnknownCommand(".cancel operation needs an operation id", at.start);
      return { kind: "cancelOperation", operationId: textOf(id) };
    }
    case "AddDatabaseRole":
    case "DropDatabaseRole": {
      const role = need(parts, "Role", at).toLowerCase();
      if (!DATABASE_ROLES.has(role)) throw new UnknownCommand(`database role '${role}' is not supported`, at.start);
      const database = first(parts, "DatabaseName");
      return { kind: name === "AddDatabaseRole" ? "addDatabaseRole" : "dropDatabaseRole", database: database ? textOf(database) : "", role: role as DatabaseRole, ...principals(parts) };
    }
    case "ShowDatabasePrincipals": {
      const database = first(parts, "DatabaseName");
      return { kind: "showDatabasePrincipals", database: database ? textOf(database) : "" };
    }
    case "AddTableRole":
    case "DropTableRole":
      return { kind: name === "AddTableRole" ? "addTableRole" : "dropTableRole", table: need(parts, "TableName", at), role: need(parts, "Role", at).toLowerCase() as TableRole, ...principals(parts) };
    case "ShowTablePrincipals":
      return { kind: "showTablePrincipals", table: need(parts, "TableName", at) };
    default:
      throw new UnknownCommand(`command ${tokens(command).slice(0, 4).map((t) => t.text).join(" ")} (${name}) is not supported`, command.start);
  }
}

function continuousExport(custom: SyntaxDump, parts: Part[], text: string, at: SyntaxDump): CommandBody {
  const queryList = findQuery(custom);
  if (!queryList) throw new UnknownCommand("a continuous export needs a query after <|", at.start);
  const reader = new QueryReader();
  const query = reader.readStatements(listOf(queryList), queryList);
  return {
    kind: "createOrAlterContinuousExport",
    name: need(parts, "ContinuousExportName", at),
    over: all(parts, "TableName").map(textOf),
    externalTable: need(parts, "ExternalTableName", at),
    properties: properties(parts),
    queryText: text.slice(queryList.start, queryList.end),
    query,
    queryTables: [...reader.tables],
    queryColumns: query.columns,
  };
}

function findQuery(n: SyntaxDump): SyntaxDump | undefined {
  for (const c of n.children) {
    if (c.role === "Query") return c;
    const found = findQuery(c);
    if (found) return found;
  }
  return undefined;
}

export { COMMAND_RESULT };
