import { fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ListValueSchema, type ListValue } from "@bufbuild/protobuf/wkt";
import type { Caller } from "@spillway/auth";
import { invalidArgument } from "@spillway/errors";
import { kqlSchemaOf, type KqlEngine, type KqlSchema } from "@spillway/kql";
import { databaseName } from "@spillway/kusto";
import type { ExecuteResponseSchema } from "@spillway/proto";
import { resultQuery } from "./command-pipe.js";
import { runCommand } from "./command-runner.js";
import { commandCalls, type CommandCalls } from "./inner-calls.js";
import type { CallAdmitter, KustoPeers, PeerAccess } from "./peer-clients.js";
import type { ResultRenderer } from "./result-renderer.js";

type ExecuteResponseInit = MessageInitShape<typeof ExecuteResponseSchema>;

/** The name Kusto gives the result table of a query or command. */
export const PRIMARY_RESULT = "PrimaryResult";

/** About this much of rows' JSON per message, so a large result never needs one large message. */
const MESSAGE_BYTES = 1024 * 1024;

export interface KustoExecutorDeps {
  peers: KustoPeers;
  access: PeerAccess;
  admitter: CallAdmitter;
  /** The parser: the process's shared KQL engine, which starts on first use (libs/kql sharedKqlEngine). */
  kql: () => Pick<KqlEngine, "parseCommand">;
  /** Where command results are typed, piped and rendered; opened on first use. */
  renderer: () => Promise<ResultRenderer>;
}

/**
 * Whether a text is a management command: its first character, after white space and `//`
 * comments, is a dot (SPEC §7a); anything else is a query.
 */
export function isCommand(text: string): boolean {
  return /^(?:\s|\/\/[^\n]*(?:\n|$))*\./.test(text);
}

/**
 * KustoService/Execute: a management command runs as the RPCs it maps onto, a query as
 * QueryService/Query in KQL. Either way the caller needs what those RPCs need; Execute
 * itself only asks that the caller be known.
 */
export class KustoExecutor {
  constructor(private readonly deps: KustoExecutorDeps) {}

  async *execute(request: { database: string; text: string }, caller: Caller): AsyncIterable<ExecuteResponseInit> {
    const database = databaseName(request.database);
    const { text } = request;
    if (!text.trim()) throw invalidArgument("text is required: a management command (starting with '.') or a KQL query");
    const calls = commandCalls(this.deps.peers, this.deps.access, this.deps.admitter, caller.principal);
    if (!isCommand(text)) {
      yield* this.query(calls.query({ database, query: text, queryLanguage: "kql" }));
      return;
    }
    const schema = await this.schemaOf(database, calls);
    const command = await this.deps.kql().parseCommand(text, schema);
    const result = await runCommand(command, { calls, database, principal: caller.principal, schema });
    // A pipe refused (a column Spillway keeps no value for) is refused before the result is typed.
    const query = resultQuery(text, command, result);
    const rendered = await (await this.deps.renderer()).render(result, query);
    yield* messages(rendered.columns, rendered.rows as JsonValue[][]);
  }

  /** QueryService/Query's stream (columns first, then batches of rows) as result-table messages. */
  private async *query(responses: AsyncIterable<{ columns: Array<{ name: string; type: string }>; rows: ListValue[] }>): AsyncIterable<ExecuteResponseInit> {
    let columns: Array<{ name: string; type: string }> | undefined;
    let sent = false;
    for await (const response of responses) {
      if (response.columns.length) columns = response.columns.map((c) => ({ name: c.name, type: c.type }));
      if (!response.rows.length) continue;
      sent = true;
      yield { name: PRIMARY_RESULT, columns, rows: response.rows };
    }
    if (!sent) yield { name: PRIMARY_RESULT, columns: columns ?? [], rows: [] };
  }

  /**
   * The tables and external tables the parser types a command with: those the caller has a
   * role on or may see, listed as the caller. The parser's refusals name what it does not know
   * (an unknown table, a column a query part names), so what the caller may not see must look
   * to it as if it did not exist: no command tells one without a role whether a table exists or
   * what its columns are.
   */
  private async schemaOf(database: string, calls: CommandCalls): Promise<KqlSchema> {
    const [tables, externals] = await Promise.all([calls.catalog("listTables", { database }), calls.catalog("listExternalTables", { database })]);
    return kqlSchemaOf(
      database,
      tables.response.tables.filter((t) => calls.may(tables.caller, "getTable", { database, name: t.name })),
      externals.response.externalTables.filter((t) => calls.may(externals.caller, "getExternalTable", { database, name: t.name })),
    );
  }
}

function* messages(columns: Array<{ name: string; type: string }>, rows: JsonValue[][]): Iterable<ExecuteResponseInit> {
  let batch: ListValue[] = [];
  let bytes = 0;
  for (const row of rows) {
    batch.push(fromJson(ListValueSchema, row));
    bytes += JSON.stringify(row).length;
    if (bytes >= MESSAGE_BYTES) {
      yield { name: PRIMARY_RESULT, columns, rows: batch };
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length || rows.length === 0) yield { name: PRIMARY_RESULT, columns, rows: batch };
}
