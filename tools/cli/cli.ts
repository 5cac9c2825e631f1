// The Spillway command line: `npx spillway <command>` against a running Spillway (README "CLI").
import { createReadStream, readFileSync, statSync } from "node:fs";
import { basename, extname } from "node:path";
import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { ListValueSchema, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { CatalogService, ContinuousExportSchema, ExportedArtifactSchema, ExportFailureSchema, KustoService, OperationSchema, QueryService, RunRecordSchema, TableSchema, type RunRecord } from "@spillway/proto";
import { createGrpcClient, type GrpcClientOptions } from "@spillway/rpc";
import { backfillProgress } from "./backfill-progress.js";
import { ingestProgress } from "./ingest-progress.js";
import { operationProgress } from "./operation-progress.js";
import { render, type OutputFormat, type Row } from "./output.js";

/** Exit codes scripts can rely on. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

interface Globals {
  addr: string;
  token?: string;
  tlsCa?: string;
  database: string;
  output: OutputFormat;
}

const json = <D extends DescMessage>(schema: D, message: MessageShape<D>) => toJson(schema, message, { alwaysEmitImplicit: true }) as Row;

function clients(g: Globals) {
  const options: GrpcClientOptions = { token: g.token ?? process.env.SPILLWAY_TOKEN, tls: g.tlsCa ? { ca: readFileSync(g.tlsCa) } : undefined };
  return {
    catalog: createGrpcClient(CatalogService, g.addr, options),
    query: createGrpcClient(QueryService, g.addr, options),
    kusto: createGrpcClient(KustoService, g.addr, options),
  };
}

/** Runs `task` with clients of the server the options name, printing what it returns. */
function action<A extends unknown[]>(task: (c: ReturnType<typeof clients>, g: Globals, ...args: A) => Promise<{ rows: Row[]; columns?: string[]; failed?: boolean } | void>) {
  return async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const g = command.optsWithGlobals() as Globals;
    const c = clients(g);
    try {
      const out = await task(c, g, ...(args.slice(0, -2) as A));
      if (out) process.stdout.write(`${render(out.rows, g.output, out.columns)}\n`);
      if (out?.failed) process.exitCode = EXIT.failure;
    } finally {
      c.catalog.close();
      c.query.close();
      c.kusto.close();
    }
  };
}

const program = new Command("spillway")
  .description("Spillway's command line: tables, continuous exports, ingestion and Kusto, against a running Spillway")
  .addOption(new Option("--addr <host:port>", "where Spillway listens").env("SPILLWAY_ADDR").default("127.0.0.1:50051"))
  .addOption(new Option("--token <token>", "bearer token (or SPILLWAY_TOKEN)"))
  .addOption(new Option("--tls-ca <file>", "PEM file to check the server's certificate against: dial with TLS"))
  .addOption(new Option("-d, --database <name>", "database").default("default"))
  .addOption(new Option("-o, --output <format>", "table, json or csv").choices(["table", "json", "csv"]).default("table"))
  .exitOverride()
  .showHelpAfterError();

program
  .command("tables")
  .description("tables")
  .command("list")
  .description("the tables of the database")
  .action(
    action(async (c, g) => {
      const { tables } = await c.catalog.listTables({ database: g.database });
      return { rows: tables.map((t) => json(TableSchema, t)).map((t) => ({ name: t.name, columns: (t.columns as Array<{ name: string; type: string }>).map((col) => `${col.name}:${col.type}`).join(", "), ingestionTimePolicy: t.ingestionTimePolicy })) };
    }),
  );

const exportsCommand = program.command("exports").description("continuous exports");
const EXPORT_COLUMNS = ["name", "externalTableName", "isDisabled", "lastRunResult", "lastRunTime", "exportedTo", "query"];
exportsCommand
  .command("list")
  .description("the continuous exports of the database")
  .action(
    action(async (c, g) => {
      const { exports } = await c.catalog.listContinuousExports({ database: g.database });
      return { rows: exports.map((e) => json(ContinuousExportSchema, e)), columns: g.output === "table" ? EXPORT_COLUMNS : undefined };
    }),
  );
exportsCommand
  .command("show <name>")
  .description("one continuous export, every field")
  .action(
    action(async (c, g, name: string) => {
      const shown = json(ContinuousExportSchema, (await c.catalog.showContinuousExport({ database: g.database, name })).export!);
      return g.output === "table" ? { rows: Object.entries(shown).map(([field, value]) => ({ field, value })) } : { rows: [shown] };
    }),
  );
exportsCommand
  .command("run <name>")
  .description("run the export now; exits 1 when the run fails")
  .action(
    action(async (c, g, name: string) => {
      const r = await c.catalog.runContinuousExportNow({ database: g.database, name });
      const records = r.artifacts.reduce((n, a) => n + a.numRecords, 0n);
      return { rows: [{ result: r.result, artifacts: r.artifacts.length, records: records.toString(), details: r.details }], failed: r.result !== "Completed" };
    }),
  );
for (const [verb, what] of [
  ["enable", "enable the export: it resumes from its checkpoint"],
  ["disable", "disable the export"],
  ["drop", "drop the export"],
] as const) {
  exportsCommand
    .command(`${verb} <name>`)
    .description(what)
    .action(
      action(async (c, g, name: string) => {
        const req = { database: g.database, name };
        if (verb === "enable") await c.catalog.enableContinuousExport(req);
        else if (verb === "disable") await c.catalog.disableContinuousExport(req);
        else await c.catalog.dropContinuousExport(req);
        return { rows: [{ export: name, done: verb }] };
      }),
    );
}
exportsCommand
  .command("artifacts <name>")
  .description("the files the export has written (14 days)")
  .action(
    action(async (c, g, name: string) => ({ rows: (await c.catalog.showExportedArtifacts({ database: g.database, name })).artifacts.map((a) => json(ExportedArtifactSchema, a)) })),
  );
exportsCommand
  .command("failures <name>")
  .description("the export's failed runs")
  .action(
    action(async (c, g, name: string) => ({ rows: (await c.catalog.showFailures({ database: g.database, name })).failures.map((f) => json(ExportFailureSchema, f)) })),
  );
exportsCommand
  .command("history [name]")
  .description("the runs of one export, or of every export of the database, with what each cost (14 days)")
  .addOption(new Option("--since <time>", "only runs started since: an ISO time, or an age such as 90m, 6h, 2d").argParser(sinceTime))
  .action(
    action(async (c, g, name: string | undefined) => {
      const opts = exportsCommand.commands.find((x) => x.name() === "history")!.opts() as { since?: Date };
      const { runs } = await c.catalog.showRunHistory({ database: g.database, name: name ?? "", since: opts.since && timestampFromDate(opts.since) });
      if (g.output !== "table") return { rows: runs.map((r) => json(RunRecordSchema, r)) };
      return { rows: runs.map(historyRow) };
    }),
  );

/** A run as a line of the history table: the figures an operator compares, in units to read at a glance. */
function historyRow(r: RunRecord): Row {
  const res = r.resources;
  const mb = (bytes: bigint | undefined) => (Number(bytes ?? 0n) / 2 ** 20).toFixed(1);
  return {
    export: r.exportName,
    run: r.runNumber.toString(),
    result: r.result,
    startedOn: r.startedOn ? timestampDate(r.startedOn).toISOString() : "",
    durationMs: r.duration ? String(Number(r.duration.seconds) * 1000 + Math.round(r.duration.nanos / 1e6)) : "",
    rowsRead: (res?.usage?.rowsRead ?? 0n).toString(),
    rowsWritten: (res?.rowsWritten ?? 0n).toString(),
    bytesWritten: (res?.bytesWritten ?? 0n).toString(),
    cpuMs: (Number(res?.usage?.cpuTimeUs ?? 0n) / 1000).toFixed(1),
    peakMemoryMB: mb(res?.usage?.peakProcessMemoryBytes),
    peakDuckdbMB: mb(res?.usage?.peakDuckdbMemoryBytes),
    parts: res?.parts ?? 0,
    phases: (res?.phases ?? []).map((p) => `${p.name} ${p.durationMs}ms`).join(", "),
    details: r.details,
  };
}

/** `--since`: an ISO time, or an age back from now (90m, 6h, 2d). */
function sinceTime(text: string): Date {
  const age = /^(\d+)([smhd])$/.exec(text);
  if (age) return new Date(Date.now() - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as "s" | "m" | "h" | "d"]);
  // A date first: Date.parse reads a bare number as a year or a month.
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) throw new InvalidArgumentError("expected an ISO time or an age such as 90m, 6h, 2d");
  return new Date(at);
}

program
  .command("ingest <table> <files...>")
  .description("ingest files into a table, each in one IngestStream call, with progress on stderr")
  .addOption(new Option("--format <format>", "csv, tsv, json or parquet (default: from the file name)"))
  .option("--ignore-first-record", "skip a header line")
  .action(
    action(async (c, g, table: string, files: string[]) => {
      const opts = program.commands.find((x) => x.name() === "ingest")!.opts() as { format?: string; ignoreFirstRecord?: boolean };
      const progress = ingestProgress(files.reduce((n, f) => n + statSync(f).size, 0));
      const rows: Row[] = [];
      try {
        for (const file of files) {
          const format = opts.format ?? extname(file).slice(1).toLowerCase();
          const pieces = async function* () {
            yield { database: g.database, table, format, ignoreFirstRecord: opts.ignoreFirstRecord ?? false };
            for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
              progress.sent((chunk as Buffer).length);
              yield { payload: chunk as Buffer };
            }
            yield { endOfPayload: true };
          };
          const r = await c.query.ingestStream(pieces());
          progress.fileDone(basename(file), r.rowCount);
          rows.push({ file, rows: r.rowCount.toString(), cursor: r.cursor });
        }
      } finally {
        progress.stop();
      }
      return { rows };
    }),
  );

/** Reads `read()` every 300 ms, showing each reading, until it is no longer InProgress; returns the last. */
async function followToEnd<T extends { state: string }>(read: () => Promise<T>, show: (now: T) => void): Promise<T> {
  for (;;) {
    const now = await read();
    show(now);
    if (now.state !== "InProgress") return now;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** `backfill <export>` (and `exports backfill <export>`): a managed backfill, followed to its end. */
function backfillCommand(parent: Command): Command {
  const command = parent
    .command("backfill <name>")
    .description("export what the export's start cursor left behind, in batches, following it with progress on stderr")
    .option("--from <cursor>", "only records after this cursor")
    .option("--async", "start it and print its operation id, without waiting");
  return command.action(
    action(async (c, g, name: string) => {
      const opts = command.opts() as { from?: string; async?: boolean };
      const { operationId } = await c.catalog.backfillContinuousExport({ database: g.database, name, fromCursor: opts.from ?? "" });
      if (opts.async) return { rows: [{ operationId }] };
      const progress = backfillProgress();
      const backfill = await followToEnd(async () => (await c.catalog.showContinuousExport({ database: g.database, name })).export!.backfill!, (b) => progress.at(b));
      progress.done(backfill.state);
      if (backfill.state !== "Completed") throw new Error(`backfill ${backfill.state.toLowerCase()} (operation ${operationId}): ${backfill.status}`);
      return { rows: [{ operationId, state: backfill.state, records: backfill.recordsDone.toString(), batches: backfill.batchesDone.toString() }] };
    }),
  );
}
backfillCommand(exportsCommand);
backfillCommand(program);

program
  .command("export <external-table> <query>")
  .description("export a query's result to an external table once (all files or none), following it with progress on stderr")
  .option("--kql", "the query is KQL (default: SQL)")
  .option("--async", "start it and print its operation id, without waiting")
  .addOption(new Option("--size-limit <bytes>", "bytes per file before compression").argParser((v) => BigInt(v)))
  .action(
    action(async (c, g, externalTable: string, query: string) => {
      const opts = program.commands.find((x) => x.name() === "export")!.opts() as { kql?: boolean; async?: boolean; sizeLimit?: bigint };
      const { operationId } = await c.query.exportToTable({
        database: g.database,
        externalTable,
        query,
        queryLanguage: opts.kql ? "kql" : "sql",
        async: true,
        properties: { sizeLimit: opts.sizeLimit ?? 0n },
      });
      if (opts.async) return { rows: [{ operationId }] };
      const progress = operationProgress(operationId);
      const operation = await followToEnd(async () => (await c.query.showOperations({ database: g.database, operationId })).operations[0]!, (o) => o.state === "InProgress" && progress.at(o.phase));
      progress.done(operation.state);
      if (operation.state !== "Completed") throw new Error(`export ${operation.state.toLowerCase()} (operation ${operationId}): ${operation.status}`);
      const { artifacts } = await c.query.showOperationDetails({ database: g.database, operationId });
      return { rows: artifacts.map((a) => ({ path: a.path, records: a.numRecords.toString(), bytes: a.sizeInBytes.toString() })) };
    }),
  );

const operationsCommand = program.command("operations").description("one-shot operations (exports to a table)");
operationsCommand
  .command("list [id]")
  .description("the database's operations (14 days), or one")
  .action(
    action(async (c, g, id: string | undefined) => {
      const { operations } = await c.query.showOperations({ database: g.database, operationId: id ?? "" });
      return { rows: operations.map((o) => json(OperationSchema, o)), columns: g.output === "table" ? ["operationId", "operation", "state", "phase", "startedOn", "duration", "status"] : undefined };
    }),
  );
operationsCommand
  .command("cancel <id>")
  .description("stop an operation in progress: it ends Canceled, its files removed")
  .action(
    action(async (c, g, id: string) => {
      const { operation } = await c.query.cancelOperation({ database: g.database, operationId: id });
      return { rows: [{ operationId: id, state: operation!.state }] };
    }),
  );

program
  .command("kql <text>")
  .description("run a Kusto query or command through KustoService/Execute")
  .action(
    action(async (c, g, text: string) => {
      const rows: Row[] = [];
      let columns: string[] | undefined;
      for await (const part of c.kusto.execute({ database: g.database, text })) {
        columns ??= part.columns.map((col) => col.name);
        for (const r of part.rows) rows.push(Object.fromEntries((toJson(ListValueSchema, r) as unknown[]).map((v, i) => [columns![i]!, v])));
      }
      return { rows, columns };
    }),
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are not failures; a usage error was printed by commander.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    // One clear line: what the server said, with its status.
    const e = err as { code?: number; message?: string };
    process.stderr.write(`spillway: ${e.message ?? String(err)}\n`);
    process.exitCode = EXIT.failure;
  }
}
