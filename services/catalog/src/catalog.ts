import { randomUUID } from "node:crypto";
import { create, fromJsonString, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Caller } from "@spillway/auth";
import { alreadyExists, ErrorCode, failedPrecondition, invalidArgument, notFound, permissionDenied, SpillwayError } from "@spillway/errors";
import { databaseName, dateFromCursor, normalizeColumns, validateName } from "@spillway/kusto";
import {
  ContinuousExportSchema,
  ExportSpecSchema,
  ExternalTableSchema,
  TableSchema,
  type ContinuousExport,
  type CreateExternalTableRequest,
  type CreateOrAlterContinuousExportRequest,
  type CreateTableRequest,
  type ExportSpec,
  type ExternalTable,
  type PlanExportRequest,
  type Table,
} from "@spillway/proto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isRowWise, type QueryDescriber } from "@spillway/duck";
import { queryLanguage, sharedKqlEngine } from "@spillway/kql";
import type { FileTargetPolicy } from "@spillway/storage";
import type { CatalogStore, CatalogTransaction } from "./catalog-store.js";
import {
  checkOutputSchema,
  describeExportQuery,
  factAndDimensionTables,
  normalizeExportProperties,
  type ExportLimits,
  type KqlTranslator,
} from "./export-definition.js";
import { checkFileTargets, externalTableFromRequest, maskedExternalTable } from "./external-table-definition.js";
import { recordLeftovers, removeJournaled } from "./drop-leftovers.js";
import type { CatalogPeers } from "./peer-clients.js";
import { dropTableGrants, grantCreatorTableAdmin } from "./principal-registry.js";

const encode = <S extends DescMessage>(schema: S, m: MessageShape<S>) => toJsonString(schema, m);
const decode = <S extends DescMessage>(schema: S, body: string) => fromJsonString(schema, body);

/** The schema registry and the admin side of continuous exports; knows nothing of gRPC. */
export class Catalog {
  constructor(
    private readonly store: CatalogStore,
    private readonly peers: CatalogPeers,
    private readonly limits: ExportLimits,
    private readonly fileTargets: FileTargetPolicy,
    private readonly describer: Pick<QueryDescriber, "describe" | "aggregates">,
    /** Asked only for a KQL export: the parser's worker starts on the first one. */
    private readonly kql: () => KqlTranslator = sharedKqlEngine,
  ) {}

  // ---- tables -------------------------------------------------------------

  /** A table; its creator (`caller`) becomes its admin, as in Kusto. */
  async createTable(req: CreateTableRequest, caller: Caller): Promise<Table> {
    const database = databaseName(req.database);
    const name = validateName("table", req.name);
    const table = create(TableSchema, {
      database,
      name,
      columns: normalizeColumns(req.columns, `table '${name}'`),
      ingestionTimePolicy: req.ingestionTimePolicy ?? true,
      createdTime: timestampNow(),
      docString: req.docString,
    });
    await this.store.write(async (tx) => {
      await this.assertNameFree(tx, database, name);
      await tx.put("table", database, name, encode(TableSchema, table));
      await grantCreatorTableAdmin(tx, database, name, caller.principal);
    });
    return table;
  }

  async getTable(databaseArg: string, nameArg: string): Promise<Table> {
    const database = databaseName(databaseArg);
    const name = validateName("table", nameArg);
    const body = await this.store.get("table", database, name);
    if (!body) throw notFound(`table '${name}' does not exist in database '${database}'`);
    return decode(TableSchema, body);
  }

  /** The tables of a database; given a caller, only those it may see. */
  async listTables(databaseArg: string, caller?: Caller): Promise<Table[]> {
    const tables = (await this.store.list("table", databaseName(databaseArg))).map((b) => decode(TableSchema, b));
    return caller ? tables.filter((t) => caller.may("tableMetadata", t.name)) : tables;
  }

  async dropTable(databaseArg: string, nameArg: string): Promise<void> {
    const database = databaseName(databaseArg);
    const name = validateName("table", nameArg);
    if (!(await this.store.get("table", database, name))) throw notFound(`table '${name}' does not exist in database '${database}'`);
    // Its data first, outside the catalog's transaction: a table made anew under the name
    // must not find the old one's extents, and a failure here leaves the table as it was.
    await this.peers.cursor.dropTableExtents({ database, table: name });
    await this.store.write(async (tx) => {
      if (!(await tx.delete("table", database, name))) throw notFound(`table '${name}' does not exist in database '${database}'`);
      await dropTableGrants(tx, database, name);
    });
  }

  async setIngestionTimePolicy(databaseArg: string, nameArg: string, enabled: boolean): Promise<Table> {
    const database = databaseName(databaseArg);
    return this.store.write(async (tx) => {
      const body = await tx.get("table", database, validateName("table", nameArg));
      if (!body) throw notFound(`table '${nameArg}' does not exist in database '${database}'`);
      const table = { ...decode(TableSchema, body), ingestionTimePolicy: enabled };
      await tx.put("table", database, table.name, encode(TableSchema, table));
      return table;
    });
  }

  // ---- external tables ----------------------------------------------------

  /** Creating needs Database User, altering one that exists Table Admin of it (SPEC §7). */
  async createExternalTable(req: Omit<CreateExternalTableRequest, "$typeName">, orAlter: boolean, caller: Caller): Promise<ExternalTable> {
    const database = databaseName(req.database);
    const name = validateName("external table", req.name);
    const mayAlter = () => {
      if (!caller.may("tableAdmin", name)) {
        throw permissionDenied(`${caller.principal} may not alter external table '${name}' of database '${database}': it needs Table Admin`);
      }
    };
    const mayCreate = () => {
      if (!caller.may("databaseUser")) {
        throw permissionDenied(`${caller.principal} may not create external table '${name}' in database '${database}': it needs Database User`);
      }
    };
    if (orAlter && (await this.store.get("external_table", database, name))) mayAlter();
    else mayCreate();
    // Before the Delta schema is read from it: a folder outside the allowed roots is not even looked at.
    await checkFileTargets(req.connectionStrings, this.fileTargets);
    const table = externalTableFromRequest(database, await this.withInferredDeltaSchema(req));
    table.createdTime = timestampNow();
    await this.store.write(async (tx) => {
      const existing = await tx.get("external_table", database, table.name);
      if (existing && !orAlter) throw alreadyExists(`external table '${table.name}' already exists in database '${database}'`);
      if (existing) mayAlter();
      else {
        mayCreate();
        await this.assertNameFree(tx, database, table.name);
      }
      await tx.put("external_table", database, table.name, encode(ExternalTableSchema, table));
      if (!existing) await grantCreatorTableAdmin(tx, database, table.name, caller.principal);
    });
    return maskedExternalTable(table);
  }

  /** A delta table created without columns takes them from the table's log (SPEC §5). */
  private async withInferredDeltaSchema<R extends Omit<CreateExternalTableRequest, "$typeName">>(req: R): Promise<R> {
    if ((req.kind || "").toLowerCase() !== "delta" || req.columns.length > 0 || req.connectionStrings.length !== 1) return req;
    const found = await this.peers.writer.readDeltaSchema({ connectionStrings: req.connectionStrings });
    if (found.minWriterVersion > 2) {
      throw failedPrecondition(`external table '${req.name}': the Delta table needs writer version ${found.minWriterVersion}; Spillway writes version 2 or lower`);
    }
    if (found.partitionColumns.length) {
      throw invalidArgument(`external table '${req.name}': the Delta table is partitioned by ${found.partitionColumns.join(", ")}; give its columns and partitions`);
    }
    return { ...req, columns: found.columns };
  }

  async getExternalTable(databaseArg: string, nameArg: string): Promise<ExternalTable> {
    return maskedExternalTable(await this.externalTableWithSecrets(databaseName(databaseArg), validateName("external table", nameArg)));
  }

  /** The external tables of a database that `caller` may see, secrets masked. */
  async listExternalTables(databaseArg: string, caller: Caller): Promise<ExternalTable[]> {
    return (await this.store.list("external_table", databaseName(databaseArg)))
      .map((b) => maskedExternalTable(decode(ExternalTableSchema, b)))
      .filter((t) => caller.may("tableMetadata", t.name));
  }

  async dropExternalTable(databaseArg: string, nameArg: string): Promise<void> {
    const database = databaseName(databaseArg);
    const name = validateName("external table", nameArg);
    await this.store.write(async (tx) => {
      if (!(await tx.delete("external_table", database, name))) {
        throw notFound(`external table '${name}' does not exist in database '${database}'`);
      }
      await dropTableGrants(tx, database, name);
    });
  }

  private async externalTableWithSecrets(database: string, name: string): Promise<ExternalTable> {
    const body = await this.store.get("external_table", database, name);
    if (!body) throw notFound(`external table '${name}' does not exist in database '${database}'`);
    return decode(ExternalTableSchema, body);
  }

  /** Names are unique per kind; a table and an external table may not share one (case-insensitively, as SQL sees them). */
  private async assertNameFree(tx: CatalogTransaction, database: string, name: string): Promise<void> {
    const all = [
      ...(await tx.list("table", database)).map((b) => ["table", decode(TableSchema, b).name]),
      ...(await tx.list("external_table", database)).map((b) => ["external table", decode(ExternalTableSchema, b).name]),
    ];
    const clash = all.find(([, n]) => n!.toLowerCase() === name.toLowerCase());
    if (clash) throw alreadyExists(`a ${clash[0]} named '${clash[1]}' already exists in database '${database}'`);
  }

  // ---- continuous exports -------------------------------------------------

  async createOrAlterContinuousExport(req: CreateOrAlterContinuousExportRequest): Promise<ContinuousExport> {
    const database = databaseName(req.database);
    const name = validateName("continuous export", req.name);
    const where = `continuous export '${name}'`;
    if (!req.externalTable) throw invalidArgument(`${where}: externalTable is required`);
    const target = await this.externalTableWithSecrets(database, validateName("external table", req.externalTable));
    const language = queryLanguage(req.queryLanguage, where);
    if (!req.query.trim()) throw invalidArgument(`${where}: query is required`);
    const properties = normalizeExportProperties(req, this.limits);

    const tables = await this.listTables(database);
    const byName = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
    const described = await describeExportQuery(where, language, req.query, database, tables, this.describer, this.kql);
    const { facts, dimensions } = factAndDimensionTables(name, described.tables, req.over, byName);
    checkOutputSchema(where, described.columns, target);
    // SQL runs as written; KQL as its translation, kept beside the user's text shown as the query.
    const sql = language === "sql" ? undefined : described.sql;
    const rowWise = isRowWise(described.shape, facts, await this.describer.aggregates());

    // The export's state first, outside the catalog's transaction (no call to another
    // service while it is held): a new export's ledger entry exists before its definition,
    // so a definition never lacks one. Creating it again is harmless (it keeps what exists).
    const committedBody = await this.store.get("continuous_export", database, name);
    const newId = committedBody ? undefined : randomUUID();
    if (newId) await this.peers.cursor.initExportState({ exportId: newId, database, name });
    let definition: ContinuousExport;
    try {
      definition = await this.store.write(async (tx) => {
        const existingBody = await tx.get("continuous_export", database, name);
        const existing = existingBody ? parseStoredExport(existingBody).definition : undefined;
        const id = existing?.id ?? newId;
        // Created by another call since it was read: try again, and this one's state goes.
        if (!id) throw new SpillwayError(ErrorCode.aborted, `continuous export '${name}' changed while it was being altered; try again`);
        const def = create(ContinuousExportSchema, {
          database,
          name,
          id,
          externalTableName: target.name,
          query: req.query,
          queryLanguage: language,
          cursorScopedTables: facts,
          exportProperties: { ...properties, isDisabled: properties.isDisabled },
          forcedLatency: properties.forcedLatency,
          intervalBetweenRuns: properties.intervalBetweenRuns,
          isDisabled: properties.isDisabled,
        });
        // Dimension tables (and a KQL query's SQL) are kept with the definition so runs need not re-parse the query.
        await tx.put("continuous_export", database, name, storedExportBody({ definition: def, dimensions, sql, rowWise }));
        return def;
      });
    } catch (err) {
      if (newId) await this.peers.cursor.purgeExportState({ exportId: newId }).catch(() => undefined);
      throw err;
    }
    if (newId && definition.id !== newId) await this.peers.cursor.purgeExportState({ exportId: newId }).catch(() => undefined);
    return this.withState(definition);
  }

  async showContinuousExport(databaseArg: string, nameArg: string): Promise<ContinuousExport> {
    return this.withState((await this.storedExport(databaseName(databaseArg), nameArg)).definition);
  }

  async listContinuousExports(databaseArg: string): Promise<ContinuousExport[]> {
    const defs = (await this.store.list("continuous_export", databaseName(databaseArg))).map((b) => parseStoredExport(b).definition);
    return this.withStates(defs);
  }

  async setExportDisabled(databaseArg: string, nameArg: string, disabled: boolean): Promise<ContinuousExport> {
    const database = databaseName(databaseArg);
    const def = await this.store.write(async (tx) => {
      const name = validateName("continuous export", nameArg);
      const body = await tx.get("continuous_export", database, name);
      if (!body) throw notFound(`continuous export '${name}' does not exist in database '${database}'`);
      const stored = parseStoredExport(body);
      const updated = {
        ...stored.definition,
        isDisabled: disabled,
        exportProperties: stored.definition.exportProperties && { ...stored.definition.exportProperties, isDisabled: disabled },
      };
      await tx.put("continuous_export", database, name, storedExportBody({ ...stored, definition: updated }));
      return updated;
    });
    // Enabling also lifts a disable the scheduler made (SPEC §3: `enable` turns it on again).
    if (!disabled) await this.peers.cursor.setSystemDisabled({ exportId: def.id, reason: "" });
    return this.withState(def);
  }

  async dropContinuousExport(databaseArg: string, nameArg: string): Promise<void> {
    const database = databaseName(databaseArg);
    const name = validateName("continuous export", nameArg);
    const body = await this.store.get("continuous_export", database, name);
    if (!body) throw notFound(`continuous export '${name}' does not exist in database '${database}'`);
    const { definition } = parseStoredExport(body);
    const external = await this.store.get("external_table", database, definition.externalTableName);
    // Storage first: the files failed attempts left must go (SPEC §3) and, if storage
    // refuses, the export is as it was (the drop lets its hold go). A run in flight cleans up
    // after itself when it fails to commit, so its files are left to it, and swept later
    // should its node have died (drop-leftovers.ts); one whose lease expired is fenced out by
    // the hold, so it cannot commit files removed here.
    let runInFlight = false;
    if (external) {
      const owner = `drop/${randomUUID()}`;
      const held = await this.peers.cursor.holdExportForDrop({ exportId: definition.id, owner });
      runInFlight = held.runInFlight;
      try {
        await removeJournaled(this.peers, definition.id, decode(ExternalTableSchema, external), held.pending);
      } catch (err) {
        // Otherwise the hold would keep its runs back until it expires (a minute).
        await this.peers.cursor.releaseLease({ exportId: definition.id, owner }).catch(() => undefined);
        throw err;
      }
    }
    // No run starts or commits once the state is gone; then the definition goes.
    await this.peers.cursor.purgeExportState({ exportId: definition.id });
    await this.store.write(async (tx) => {
      const current = await tx.get("continuous_export", database, name);
      // Dropped meanwhile, or dropped and created anew (a new id): that one stays.
      if (!current || parseStoredExport(current).definition.id !== definition.id) return;
      await tx.delete("continuous_export", database, name);
      if (runInFlight && external) await recordLeftovers(tx, { exportId: definition.id, database, exportName: definition.name, externalTable: external, droppedAtMs: Date.now() });
    });
  }

  async listArtifacts(databaseArg: string, nameArg: string) {
    const { definition } = await this.storedExport(databaseName(databaseArg), nameArg);
    return this.peers.cursor.listArtifacts({ exportId: definition.id });
  }

  async listFailures(databaseArg: string, nameArg: string) {
    const { definition } = await this.storedExport(databaseName(databaseArg), nameArg);
    return this.peers.cursor.listFailures({ exportId: definition.id });
  }

  /** The runs of one export, or of every export in the database, with what each cost (kept 14 days). */
  async runHistory(databaseArg: string, nameArg: string, since?: Timestamp) {
    const database = databaseName(databaseArg);
    const ids = nameArg
      ? [(await this.storedExport(database, nameArg)).definition.id]
      : (await this.store.list("continuous_export", database)).map((b) => parseStoredExport(b).definition.id);
    // No export, no runs: an empty list would ask the ledger for every database's.
    if (ids.length === 0) return { runs: [] };
    return this.peers.cursor.listRuns({ exportIds: ids, since });
  }

  /**
   * What a one-shot export runs (PlanExport): its query checked against the external table
   * as a continuous export's is, KQL translated, every table it reads bound whole, the
   * target with its secrets (internal only).
   */
  async planExport(req: PlanExportRequest): Promise<ExportSpec> {
    const database = databaseName(req.database);
    const externalName = validateName("external table", req.externalTable);
    const where = `export to external table '${externalName}'`;
    const target = await this.externalTableWithSecrets(database, externalName);
    if (req.targetOnly) return create(ExportSpecSchema, { database, externalTable: target });
    const language = queryLanguage(req.queryLanguage, where);
    if (!req.query.trim()) throw invalidArgument(`${where}: query is required`);
    const sizeLimit = req.properties?.sizeLimit || BigInt(Math.max(1 << 30, this.limits.minSizeLimit));
    if (sizeLimit < BigInt(this.limits.minSizeLimit)) throw invalidArgument(`${where}: sizeLimit ${sizeLimit} is below the minimum of ${this.limits.minSizeLimit} bytes`);
    if ((req.properties?.parquetRowGroupSize ?? 0) < 0) throw invalidArgument(`${where}: parquetRowGroupSize must be positive`);
    const tables = await this.listTables(database);
    const described = await describeExportQuery(where, language, req.query, database, tables, this.describer, this.kql);
    checkOutputSchema(where, described.columns, target);
    const byName = new Map(tables.map((t) => [t.name, t]));
    return create(ExportSpecSchema, {
      database,
      query: described.sql,
      factTables: [],
      dimensionTables: described.tables,
      tables: described.tables.flatMap((t) => (byName.has(t) ? [byName.get(t)!] : [])),
      externalTable: target,
      properties: { sizeLimit, parquetRowGroupSize: req.properties?.parquetRowGroupSize || 100_000, distributed: false },
    });
  }

  /**
   * Managed backfill (SPEC §6a): an operation a scheduler runs in batches, exporting what the
   * export's start cursor left behind (after `fromCursor` when given).
   */
  async backfill(databaseArg: string, nameArg: string, fromCursor: string) {
    const database = databaseName(databaseArg);
    const { definition } = await this.storedExport(database, nameArg);
    const target = await this.externalTableWithSecrets(database, definition.externalTableName).catch(() => undefined);
    if (!target) throw failedPrecondition(`the external table of continuous export '${definition.name}' no longer exists`);
    const operationId = randomUUID();
    const { progress } = await this.peers.cursor.createBackfill({
      operationId,
      exportId: definition.id,
      database,
      name: definition.name,
      fromCursor,
      requestJson: JSON.stringify({ kind: "Backfill", exportId: definition.id, name: definition.name, externalTable: definition.externalTableName }),
    });
    return { operationId, progress };
  }

  /** Replay (SPEC §6a): the export's checkpoint moved to `cursor`, by `principal`. */
  async resetCursor(databaseArg: string, nameArg: string, cursor: string, principal: string): Promise<ContinuousExport> {
    const database = databaseName(databaseArg);
    const { definition } = await this.storedExport(database, nameArg);
    await this.peers.cursor.resetExportCheckpoint({ exportId: definition.id, name: definition.name, cursor, note: `by ${principal}` });
    return this.withState(definition);
  }

  async runNow(databaseArg: string, nameArg: string) {
    const database = databaseName(databaseArg);
    // Disabled by the user here; one the scheduler disabled is refused when the run would open (StartRun).
    const { definition } = await this.storedExport(database, nameArg);
    if (definition.isDisabled) throw failedPrecondition(`continuous export '${definition.name}' is disabled; enable it first`);
    return this.peers.cursor.runExportNow({ database, name: definition.name });
  }

  /** What the scheduler needs to run exports, resolved now (secrets included: internal only). */
  /**
   * Everything a run needs of the exports (all, a database's, or one). The scheduler asks
   * for all of them every time a run ends, so that listing is kept until a definition changes;
   * callers must not modify the specs.
   */
  async exportSpecs(databaseArg: string, nameArg: string): Promise<ExportSpec[]> {
    await this.store.sync();
    const version = this.store.version;
    if (databaseArg || nameArg) {
      // A run asks for its export's spec up to three times (bench #3): from the listing when it still holds.
      if (this.allSpecs?.version !== version) return this.buildExportSpecs(databaseArg, nameArg);
      const database = databaseArg ? databaseName(databaseArg) : undefined;
      const name = nameArg ? validateName("continuous export", nameArg) : undefined;
      return this.allSpecs.specs.filter((s) => (database === undefined || s.database === database) && (name === undefined || s.name === name));
    }
    if (this.allSpecs?.version !== version) this.allSpecs = { version, specs: await this.buildExportSpecs("", "") };
    return this.allSpecs.specs;
  }

  private allSpecs: { version: number; specs: ExportSpec[] } | undefined;

  private async buildExportSpecs(databaseArg: string, nameArg: string): Promise<ExportSpec[]> {
    const database = databaseArg ? databaseName(databaseArg) : undefined;
    const bodies = nameArg && database
      ? [await this.store.get("continuous_export", database, validateName("continuous export", nameArg))].filter((b): b is string => !!b)
      : await this.store.list("continuous_export", database);
    const specs: ExportSpec[] = [];
    // The scheduler asks for every export each tick: decode each database's tables once.
    const tablesByDatabase = new Map<string, Map<string, Table>>();
    for (const body of bodies) {
      const { definition: d, dimensions, sql, rowWise } = parseStoredExport(body);
      let tables = tablesByDatabase.get(d.database);
      if (!tables) tablesByDatabase.set(d.database, (tables = new Map((await this.listTables(d.database)).map((t) => [t.name, t]))));
      const external = await this.store.get("external_table", d.database, d.externalTableName);
      specs.push(
        create(ExportSpecSchema, {
          id: d.id,
          database: d.database,
          name: d.name,
          // What runs: a KQL definition's query is the user's text, its SQL is what executes.
          query: sql ?? d.query,
          factTables: d.cursorScopedTables,
          dimensionTables: dimensions,
          tables: [...d.cursorScopedTables, ...dimensions].flatMap((t) => (tables.has(t) ? [tables.get(t)!] : [])),
          externalTable: external ? decode(ExternalTableSchema, external) : undefined,
          intervalBetweenRuns: d.intervalBetweenRuns,
          forcedLatency: d.forcedLatency,
          properties: d.exportProperties,
          isDisabled: d.isDisabled,
          rowWise,
        }),
      );
    }
    return specs;
  }

  private async storedExport(database: string, nameArg: string) {
    const name = validateName("continuous export", nameArg);
    const body = await this.store.get("continuous_export", database, name);
    if (!body) throw notFound(`continuous export '${name}' does not exist in database '${database}'`);
    return parseStoredExport(body);
  }

  private async withState(def: ContinuousExport): Promise<ContinuousExport> {
    return (await this.withStates([def]))[0]!;
  }

  private async withStates(defs: ContinuousExport[]): Promise<ContinuousExport[]> {
    if (defs.length === 0) return [];
    const exportIds = defs.map((d) => d.id);
    const [{ states }, { backfills }] = await Promise.all([this.peers.cursor.getExportStates({ exportIds }), this.peers.cursor.listBackfills({ exportIds })]);
    const byId = new Map(states.map((s) => [s.exportId, s]));
    const backfillOf = new Map(backfills.map((b) => [b.exportId, b.progress]));
    return defs.map((d) => {
      const s = byId.get(d.id);
      if (!s) return d;
      const exportedTo = dateFromCursor(s.checkpointCursor);
      // Disabled by the user (the definition) or by the scheduler after 7 days of permanent failures (the ledger).
      const isDisabled = d.isDisabled || s.systemDisabled !== "";
      return {
        ...d,
        isDisabled,
        exportProperties: d.exportProperties && { ...d.exportProperties, isDisabled },
        startCursor: s.startCursor,
        checkpointCursor: s.checkpointCursor,
        exportedTo: exportedTo && timestampFromDate(exportedTo),
        isRunning: s.isRunning,
        lastRunResult: s.lastRunResult,
        lastRunTime: s.lastRunTime,
        backfill: backfillOf.get(d.id),
      };
    });
  }
}

/**
 * A continuous export as the store keeps it: the definition as shown, the dimension tables,
 * and for a query that is not SQL the SQL it was translated to at create/alter. A body
 * written before KQL was accepted has no `sql`: its query is SQL and runs as it is.
 */
interface StoredExport {
  definition: ContinuousExport;
  dimensions: string[];
  sql?: string;
  /** Runs may split over nodes (libs/duck isRowWise); false for definitions made before it was known. */
  rowWise: boolean;
}

function storedExportBody(e: StoredExport): string {
  return JSON.stringify({ definition: encode(ContinuousExportSchema, e.definition), dimensions: e.dimensions, ...(e.sql === undefined ? {} : { sql: e.sql }), rowWise: e.rowWise });
}

function parseStoredExport(body: string): StoredExport {
  const parsed = JSON.parse(body) as { definition: string; dimensions: string[]; sql?: string; rowWise?: boolean };
  return { definition: decode(ContinuousExportSchema, parsed.definition), dimensions: parsed.dimensions, sql: parsed.sql, rowWise: parsed.rowWise === true };
}
