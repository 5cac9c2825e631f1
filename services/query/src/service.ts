import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { ErrorCode, invalidArgument, notFound, SpillwayError } from "@spillway/errors";
import { databaseName, KUSTO_TO_DUCKDB, validateName } from "@spillway/kusto";
import type { ArtifactEncoding, IngestFromQueryRequest, IngestFromStorageRequest, IngestRequest, IngestStreamRequest, QueryService, Table } from "@spillway/proto";
import { maskConnectionString, parseConnectionString, type FileTargetPolicy } from "@spillway/storage";
import type { ServiceImpl } from "@spillway/rpc";
import { queryLanguage } from "@spillway/kql";
import { measured } from "@spillway/telemetry";
import { measuredIngestion } from "./ingestion-metrics.js";
import { OneShotExports } from "./one-shot-export.js";
import { openSource } from "./storage-source.js";
import { extractZipEntries, zipEntryMatcher } from "./zip-entries.js";
import { ingestBudget, isGzip, isZip, keepWithin, takeFile } from "./ingest-budget.js";
import { translateKqlQuery } from "./kql-query.js";

/** Answers to CommitExtent that say it did not commit; any other failure leaves that unknown. */
const COMMIT_REFUSALS: ReadonlySet<ErrorCode> = new Set([ErrorCode.invalidArgument, ErrorCode.notFound, ErrorCode.alreadyExists, ErrorCode.failedPrecondition, ErrorCode.permissionDenied]);
import { parseIngestFormat } from "./payload-ingestion.js";
import type { QueryEngine, SpoolEncoding, TableBinding } from "./query-engine.js";
import type { QueryPeers } from "./peer-clients.js";
import { sliceEnd } from "./fact-slice.js";

/** What every ingestion names: where, and its ingest-by tags. */
type TagTarget = Pick<IngestRequest, "database" | "table" | "ingestByTags" | "ingestIfNotExists">;
type IngestTarget = TagTarget & Pick<IngestRequest, "format" | "ignoreFirstRecord">;
/** The most ingest-by tags one call may carry (each list). */
const MAX_TAGS = 100;
/** The most files or blobs one IngestFromStorage call may name. */
const MAX_URIS = 1000;

export interface IngestLimits {
  /** Largest payload a call may bring, whole or in pieces. */
  maxPayloadBytes: number;
  /** Longest an IngestStream may go without a message. */
  idleTimeoutMs: number;
}

/**
 * The payload of an IngestStream: the first message's piece, then each later message's,
 * up to the one that sets end_of_payload. Only the first message may say where the payload
 * goes; a later one that does is refused rather than ignored or obeyed, as the client
 * evidently meant something else. A stream that stops without end_of_payload is refused:
 * grpc-js delivers a client's cancel as the end of its stream, then as a cancel
 * (grpc/grpc-node#2583), and part of a payload must never be taken for all of it. So is
 * one that grows past the size limit or goes quiet, rather than hold disk or a call forever.
 */
async function* payloadPieces(first: IngestStreamRequest, rest: AsyncIterator<IngestStreamRequest>, limits: IngestLimits): AsyncIterable<Uint8Array> {
  let bytes = 0;
  const counted = (piece: Uint8Array) => {
    bytes += piece.length;
    if (bytes > limits.maxPayloadBytes) throw tooLarge(limits);
    return piece;
  };
  if (first.payload.length) yield counted(first.payload);
  let ended = first.endOfPayload;
  for (let n = 2; ; n++) {
    const next = await nextWithin(rest, limits.idleTimeoutMs);
    if (next.done) break;
    if (ended) throw invalidArgument(`IngestStream message ${n} follows the one that set end_of_payload; nothing was ingested`);
    const { database, table, format, ignoreFirstRecord, payload, endOfPayload } = next.value;
    const named = Object.entries({ database, table, format, ignoreFirstRecord }).filter(([, v]) => v).map(([k]) => k);
    if (named.length) {
      throw invalidArgument(`IngestStream message ${n} sets ${named.join(", ")}; only the first message may, later ones carry only payload; nothing was ingested`);
    }
    if (payload.length) yield counted(payload);
    ended = endOfPayload;
  }
  if (!ended) throw invalidArgument("IngestStream ended without a message setting end_of_payload, so the payload may be incomplete; nothing was ingested");
}

async function nextWithin<T>(messages: AsyncIterator<T>, timeoutMs: number): Promise<IteratorResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const next = messages.next();
  // The call fails on a timeout; what the stream does after that is no one's business.
  next.catch(() => {});
  const quiet = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SpillwayError(ErrorCode.deadlineExceeded, `IngestStream received no message for ${timeoutMs / 1000} s; nothing was ingested`)), timeoutMs);
  });
  try {
    return await Promise.race([next, quiet]);
  } finally {
    clearTimeout(timer);
  }
}

function tooLarge(limits: IngestLimits): SpillwayError {
  return new SpillwayError(ErrorCode.resourceExhausted, `the payload is larger than the ${limits.maxPayloadBytes} bytes one call may ingest (--max-ingest-size); nothing was ingested`);
}

/** The most one ad-hoc query may return (SPEC §7 limits; Kusto truncates at 500,000 records or 64 MB). */
export interface QueryResultLimits {
  maxRows: number;
  /** Measured as the rows' JSON text. */
  maxBytes: number;
}

/** gRPC handlers of QueryService: translation between wire and the engine. */
export function queryHandlers(
  engine: QueryEngine,
  peers: QueryPeers,
  limits: IngestLimits,
  resultLimits: QueryResultLimits,
  /** Where files ingested by reference may be read from: the folders file targets may use. */
  fileTargets: FileTargetPolicy = { roots: [], dataDir: engine.dataDir },
): ServiceImpl<typeof QueryService> {
  const oneShot = new OneShotExports(peers);
  /** One payload, whole or in pieces, into one extent committed at the table's cursor. */
  /**
   * What a query of the database reads, bound: SQL checked (KQL translated, to run as the SQL
   * it becomes, through the same binding, sandbox and limits), the extents of the tables it
   * names listed with the cursor they are consistent with, which cursor_current() gives.
   */
  async function boundQuery(database: string, query: string, language: string) {
    const checked = queryLanguage(language) === "sql" ? await engine.check(query) : undefined;
    const { tables } = await peers.catalog.listTables({ database });
    const kql = checked ? undefined : await translateKqlQuery(query, database, tables);
    const byName = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
    const named = (checked ?? kql!).tables.flatMap((t) => (byName.has(t.toLowerCase()) ? [byName.get(t.toLowerCase())!.name] : []));
    const { extents, cursor } = named.length
      ? await peers.cursor.listExtents({ database, tables: named })
      : { extents: [], cursor: (await peers.cursor.getCurrentCursor({ database })).cursor };
    return { tables, kql, bindings: bindingsOf(tables, extents), context: { currentCursor: BigInt(cursor || "0") } };
  }

  /**
   * One ingestion into `target.table`: skipped at once when an ingestIfNotExists tag is on
   * an extent of the table; otherwise `make` writes the extent, committed at the table's
   * cursor with its tags (skipped after all when another ingestion with the tag committed
   * first), and with `replace` in place of the table's extents.
   */
  async function ingestInto(
    target: TagTarget,
    make: (extentName: string, table: Table) => Promise<{ path: string; rows: bigint; bytes: bigint }>,
    options: { replace?: boolean; table?: Table } = {},
  ) {
    const database = databaseName(target.database);
    const table = options.table ?? (await peers.catalog.getTable({ database, name: validateName("table", target.table) })).table!;
    for (const [field, values] of [["ingestByTags", target.ingestByTags], ["ingestIfNotExists", target.ingestIfNotExists]] as const) {
      if (values.length > MAX_TAGS) throw invalidArgument(`${field}: at most ${MAX_TAGS} tags, got ${values.length}`);
      const bad = values.find((t) => t.length === 0 || t.length > 256 || /[\u0000-\u001f]/.test(t));
      if (bad !== undefined) throw invalidArgument(`${field}: a tag is 1 to 256 characters with no control character (got ${JSON.stringify(bad.slice(0, 40))})`);
    }
    // Kusto's ingest-by tags: a retry of an ingestion that landed finds its tag and is skipped, before any work.
    const tags = target.ingestByTags.map((t) => `ingest-by:${t}`);
    const ifNotExists = target.ingestIfNotExists.map((t) => `ingest-by:${t}`);
    const skipped = { extentId: "", rowCount: 0n, cursor: "", bytes: 0n, skipped: true };
    if (ifNotExists.length && (await peers.cursor.findExtentTags({ database, table: table.name, tags: ifNotExists })).found.length) return skipped;
    const extentId = randomUUID();
    const extent = await make(join("extents", database, table.name, `${extentId}.parquet`), table);
    // Nothing to add; a replace with nothing still empties the table.
    if (extent.rows === 0n && !options.replace) {
      await engine.extents.delete(extent.path);
      return { extentId: "", rowCount: 0n, cursor: "", bytes: 0n, skipped: false };
    }
    try {
      const committed = await peers.cursor.commitExtent({
        database,
        table: table.name,
        extentId,
        path: extent.path,
        rowCount: extent.rows,
        sizeBytes: extent.bytes,
        tags,
        ifNotExists,
        replace: options.replace ?? false,
      });
      if (committed.skipped) {
        // Another ingestion with the tag committed meanwhile: this one's file was never visible.
        await engine.extents.delete(extent.path);
        return skipped;
      }
      return { extentId, rowCount: extent.rows, cursor: committed.cursor, bytes: extent.bytes, skipped: false };
    } catch (err) {
      // Refused, so not committed and not visible: the file must not linger either. When the
      // answer was lost (the cursor service or its database went away mid-call) the extent may
      // have committed, and deleting its file would break every run over it: it stays.
      if (COMMIT_REFUSALS.has(SpillwayError.from(err).code)) await engine.extents.delete(extent.path);
      throw err;
    }
  }

  /** One payload, whole or in pieces, into one extent committed at the table's cursor. */
  async function ingestPayload(target: IngestTarget, payload: Uint8Array | AsyncIterable<Uint8Array>) {
    const format = parseIngestFormat(target.format);
    return ingestInto(target, (extentName, table) => engine.ingest(format, payload, table.columns, target.ignoreFirstRecord, extentName));
  }

  /** Files and blobs by reference, all into one extent (SPEC §6a). */
  async function ingestFromStorage(req: IngestFromStorageRequest) {
    const format = parseIngestFormat(req.format);
    if (req.uris.length === 0) throw invalidArgument("uris: name at least one file or blob to ingest");
    if (req.uris.length > MAX_URIS) throw invalidArgument(`uris: at most ${MAX_URIS} files or blobs in one call, got ${req.uris.length}`);
    let hosts: Promise<Set<string>> | undefined;
    // The storage hosts the database's external tables use, read once if a URI needs them.
    const storageHosts = () =>
      (hosts ??= peers.catalog.listExternalTables({ database: req.database }).then(
        ({ externalTables }) =>
          new Set(
            externalTables.flatMap((t) =>
              t.connectionStrings.flatMap((cs) => {
                try {
                  const location = parseConnectionString(cs);
                  return location.kind === "blob" ? [new URL(location.serviceUrl).host.toLowerCase()] : [];
                } catch {
                  return [];
                }
              }),
            ),
          ),
      ));
    if (req.zipPattern && !req.uris.some(isZip)) throw invalidArgument("zipPattern selects files in .zip archives, and none of the uris names one");
    const inArchive = zipEntryMatcher(req.zipPattern);
    // For all the call's files together: the bytes they bring (gzip unpacked here, so its
    // size is counted as it comes, not as it claims), and how many.
    const budget = ingestBudget(limits.maxPayloadBytes, MAX_URIS);
    const scratchFor = () => engine.scratchFile(`.${format}`);
    return ingestInto(req, async (extentName, table) => {
      const files: Array<{ file: string; shown: string }> = [];
      const archives: string[] = [];
      try {
        for (const uri of req.uris) {
          const shown = maskConnectionString(uri);
          if (!isZip(uri)) {
            takeFile(budget);
            const local = scratchFor();
            files.push({ file: local, shown: `'${shown}'` });
            await keepWithin(await openSource(uri, fileTargets, storageHosts), local, shown, budget, { gunzip: isGzip(uri) });
            continue;
          }
          // An archive's files (those zipPattern selects) are ingested as if each were named;
          // the archive counts as read, and so do its files as they come out of it.
          const archive = engine.scratchFile(".zip");
          archives.push(archive);
          await keepWithin(await openSource(uri, fileTargets, storageHosts), archive, shown, budget, { gunzip: false, kept: false });
          const extracted = await extractZipEntries(archive, shown, inArchive, (path) => {
            const local = scratchFor();
            files.push({ file: local, shown: `'${path}' in '${shown}'` });
            return local;
          }, budget);
          // Its files are out: the archive need not take disk space while the others come.
          await rm(archive, { force: true });
          if (extracted.length === 0) throw invalidArgument(`archive '${shown}' has no file${req.zipPattern ? ` matching zipPattern '${req.zipPattern}'` : ""}; nothing was ingested`);
        }
        return await engine.ingestFiles(format, files, table.columns, req.ignoreFirstRecord, extentName);
      } finally {
        // A failure to remove scratch must not hide what went wrong.
        await Promise.all([...files.map((f) => f.file), ...archives].map((f) => rm(f, { force: true }).catch(() => undefined)));
      }
    });
  }

  /** A query's result into a table: append, set-or-append or set-or-replace (Kusto's commands of those names). */
  async function ingestFromQuery(req: IngestFromQueryRequest) {
    const database = databaseName(req.database);
    const mode = req.mode || "append";
    if (mode !== "append" && mode !== "set-or-append" && mode !== "set-or-replace") throw invalidArgument(`mode '${req.mode}' is not one of append, set-or-append, set-or-replace`);
    const name = validateName("table", req.table);
    const { tables, kql, bindings, context } = await boundQuery(database, req.query, req.queryLanguage);
    // A KQL query's typed SELECT (not the one rendered as Kusto's JSON text for answers).
    const sql = kql?.typedSql ?? req.query;
    let table = tables.find((t) => t.name === name);
    let created = false;
    if (!table) {
      if (mode === "append") throw notFound(`table '${name}' does not exist in database '${database}'; .append adds to a table, set-or-append creates it`);
      // KQL's columns as the parser typed them; SQL's as DuckDB describes them.
      const columns = kql ? kql.columns.map((c) => ({ name: c.name, type: c.type })) : await engine.describe(sql, bindings, context);
      const untyped = columns.filter((c) => !(c.type in KUSTO_TO_DUCKDB));
      if (untyped.length) throw invalidArgument(`the query's column${untyped.length > 1 ? "s" : ""} ${untyped.map((c) => `'${c.name}' (${c.type})`).join(", ")} ha${untyped.length > 1 ? "ve" : "s"} no Kusto type; cast ${untyped.length > 1 ? "them" : "it"} to make table '${name}'`);
      table = (await peers.catalog.createTable({ database, name, columns })).table!;
      created = true;
    }
    const done = await ingestInto(req, (extentName, t) => engine.queryToExtent(sql, bindings, t.columns, extentName, context), { replace: mode === "set-or-replace", table });
    return { ...done, created };
  }

  return {
    async ingest(req) {
      return withoutBytes(
        await measuredIngestion(req, async () => {
          if (req.payload.length > limits.maxPayloadBytes) throw tooLarge(limits);
          return ingestPayload(req, req.payload);
        }),
      );
    },

    async ingestStream(requests) {
      const messages = requests[Symbol.asyncIterator]();
      const first = await nextWithin(messages, limits.idleTimeoutMs);
      if (first.done) throw invalidArgument("IngestStream needs at least one message, naming database, table and format");
      return withoutBytes(await measuredIngestion(first.value, () => ingestPayload(first.value, payloadPieces(first.value, messages, limits))));
    },

    async *query(req, ctx) {
      const { kql, bindings, context } = await boundQuery(databaseName(req.database), req.query, req.queryLanguage);
      let rows = 0;
      let bytes = 0;
      const batches = engine.query(kql?.sql ?? req.query, bindings, ctx.signal, context);
      for await (const batch of kql ? kql.results(batches) : batches) {
        if (batch.columns) yield { columns: batch.columns };
        if (!batch.rows) continue;
        rows += batch.rows.length;
        bytes += JSON.stringify(batch.rows).length;
        if (rows > resultLimits.maxRows || bytes > resultLimits.maxBytes) {
          const limit = rows > resultLimits.maxRows ? `${resultLimits.maxRows} rows (--max-query-result-rows)` : `${resultLimits.maxBytes} bytes (--max-query-result-size)`;
          throw new SpillwayError(ErrorCode.resourceExhausted, `the query's result is larger than ${limit}, the most a query may return; narrow it with a filter, an aggregate or LIMIT`);
        }
        yield { rows: batch.rows.map((row) => fromJson(ListValueSchema, row as JsonValue)) };
      }
    },

    ingestFromStorage: async (req) => withoutBytes(await measuredIngestion(req, () => ingestFromStorage(req))),
    ingestFromQuery: async (req) => withoutBytes(await measuredIngestion(req, () => ingestFromQuery(req))),
    // Table Admin of the target and a reader of the database: the access rule (access.ts).
    exportToTable: (req, ctx) => oneShot.exportToTable(req, ctx.signal),
    showOperations: async (req) => ({ operations: await oneShot.operations(req.database, req.operationId) }),
    showOperationDetails: async (req) => ({ artifacts: await oneShot.details(req.database, req.operationId) }),
    cancelOperation: async (req) => ({ operation: await oneShot.cancel(req.database, req.operationId) }),

    async executeToSpool(req) {
      // Binding tables is the query service's job (DESIGN "Scale-out"): callers name tables and ranges, not files.
      const listed = await Promise.all(
        req.factTables.map(async (f) => {
          const { extents } = await peers.cursor.listExtents({ database: req.database, tables: [f.table], afterCursor: f.afterCursor, upToCursor: f.upToCursor });
          return extents;
        }),
      );
      const coveredTo = sliceEnd(listed.flat(), req.maxFactBytes);
      const facts = coveredTo === undefined ? listed : listed.map((extents) => extents.filter((e) => BigInt(e.cursor) <= coveredTo));
      // A run with fact tables and nothing new in them has nothing to do; a one-shot export (no fact tables) reads its tables whole.
      if (req.factTables.length && facts.every((extents) => extents.length === 0)) return { spoolHandle: "", rowCount: 0n, encodedFiles: [] };
      const dimensionListing = req.dimensionTables.length ? await peers.cursor.listExtents({ database: req.database, tables: req.dimensionTables }) : undefined;
      const dimensions = dimensionListing?.extents ?? [];
      const bindings = bindingsOf(req.tables, [...facts.flat(), ...dimensions]);
      // cursor_current() in an export's query: a run's upper bound, the newest cursor it reads; in a one-shot export, the listing's.
      const currentCursor = req.factTables.length
        ? req.factTables.reduce((max, f) => (f.upToCursor && BigInt(f.upToCursor) > max ? BigInt(f.upToCursor) : max), 0n)
        : BigInt(dimensionListing?.cursor || "0");
      const folder = await engine.spools.create(req.spoolName);
      try {
        const { value: spool, usage } = await measured(() => engine.executeToSpool(req.query, bindings, req.outputColumns, folder, oneShotEncoding(req.encoding), { currentCursor }), engine.runMemory.read);
        const read = facts.flat().concat(dimensions);
        const oldest = facts.flat().reduce<bigint | undefined>((min, e) => (min === undefined || BigInt(e.cursor) < min ? BigInt(e.cursor) : min), undefined);
        return {
          oldestFactCursor: oldest === undefined ? "" : oldest.toString(),
          coveredToCursor: coveredTo === undefined ? "" : coveredTo.toString(),
          spoolHandle: req.spoolName,
          rowCount: spool.rows,
          encodedFiles: spool.encodedFiles,
          usage: { ...usage, rowsRead: read.reduce((n, e) => n + e.rowCount, 0n), bytesRead: read.reduce((n, e) => n + e.sizeBytes, 0n) },
        };
      } catch (err) {
        await engine.spools.discard(req.spoolName).catch(() => undefined);
        throw err;
      }
    },

    async discardSpool(req) {
      await engine.spools.discard(req.spoolName);
      return {};
    },
  };
}

/**
 * The tables a query may read, each bound to its extents; a table with the IngestionTime
 * policy also to their cursors, which cursor functions read.
 */
function bindingsOf(tables: Array<{ name: string; columns: Array<{ name: string; type: string }>; ingestionTimePolicy: boolean }>, extents: Array<{ table: string; path: string; cursor: string }>): TableBinding[] {
  return tables.map((t) => {
    const own = extents.filter((e) => e.table === t.name);
    return { name: t.name, columns: t.columns, extentPaths: own.map((e) => e.path), extentCursors: t.ingestionTimePolicy ? own.map((e) => BigInt(e.cursor)) : undefined };
  });
}

/**
 * One pass (the result written in the artifacts' format) where the table needs no spool of
 * rows: partition folders are computed over the rows, so partitioned tables keep the spool.
 */
function oneShotEncoding(encoding: ArtifactEncoding | undefined): SpoolEncoding | undefined {
  const table = encoding?.externalTable;
  if (!encoding || !table || table.partitions.length > 0) return undefined;
  return { table, sizeLimit: Number(encoding.sizeLimit), rowGroupSize: encoding.parquetRowGroupSize };
}

/** The answer of an ingestion call: what the metrics counted besides is not the caller's. */
function withoutBytes<T extends { bytes: bigint }>(done: T): Omit<T, "bytes"> {
  const { bytes: _, ...answer } = done;
  return answer;
}
