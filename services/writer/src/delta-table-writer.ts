import { stat } from "node:fs/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import { quoteIdent, quoteLiteral, runMaterialized } from "@spillway/duck";
import { failedPrecondition } from "@spillway/errors";
import { parseKustoType } from "@spillway/kusto";
import type { ExternalTable } from "@spillway/proto";
import type { StorageTarget } from "@spillway/storage";
import { CHECKPOINT_INTERVAL, DeltaLog, type Action, type AddAction, type DeltaSnapshot } from "./delta-log.js";
import { deltaSchemaString, sameDeltaSchema } from "./delta-schema.js";
import { deltaPartitionValues } from "./partition-sql.js";

/** What a run commits to a Delta table once its data files are uploaded. */
export interface DeltaPlan {
  appId: string;
  txnVersion: number;
  /**
   * A backfill batch's: its txn versions, one per claim of the operation, run from this one to
   * txnVersion, and an earlier claim's commit of the batch with files is the batch's commit.
   * Absent: txnVersion alone.
   */
  txnSince?: number;
  fromCursor: string;
  toCursor: string;
  adds: AddAction[];
  /** An empty commit that only takes the txn, so no late attempt can commit it (FindDeltaCommit's fence). */
  fence?: boolean;
}

/** The table's columns as the Delta schema has them: stored columns, then partition columns. */
export function deltaColumns(table: ExternalTable): Array<{ name: string; type: string }> {
  return [...table.columns, ...table.partitions.map((p) => ({ name: p.name, type: p.type }))];
}

/** Refuses to write a table this writer must not touch (SPEC §5; PROTOCOL.md writer versions). */
export function checkWritable(snap: DeltaSnapshot, table: ExternalTable): void {
  if (snap.protocol && snap.protocol.minWriterVersion > 2) {
    throw failedPrecondition(
      `Delta table of '${table.name}' needs writer version ${snap.protocol.minWriterVersion}; Spillway writes tables of writer version 2 or lower`,
    );
  }
  if (snap.metaData) {
    const expected = deltaSchemaString(deltaColumns(table));
    if (!sameDeltaSchema(snap.metaData.schemaString, expected)) {
      throw failedPrecondition(`the Delta table's schema no longer matches external table '${table.name}': it has ${snap.metaData.schemaString}`);
    }
    const partitions = table.partitions.map((p) => p.name);
    if (JSON.stringify(snap.metaData.partitionColumns) !== JSON.stringify(partitions)) {
      throw failedPrecondition(`the Delta table is partitioned by [${snap.metaData.partitionColumns.join(", ")}], external table '${table.name}' by [${partitions.join(", ")}]`);
    }
  }
}

/** The add action of one staged data file, with Delta's per-file statistics. */
export async function addActionFor(connection: DuckDBConnection, table: ExternalTable, localFile: string, relativePath: string, folder: string): Promise<AddAction> {
  const f = quoteLiteral(localFile);
  const statCols = table.columns.filter((c) => parseKustoType(c.type, c.name) !== "dynamic" && parseKustoType(c.type, c.name) !== "bool");
  const select = [
    "count(*)::BIGINT AS n",
    ...table.columns.map((c, i) => `(count(*) - count(${quoteIdent(c.name)}))::BIGINT AS "nulls${i}"`),
    ...statCols.flatMap((c, i) => [`CAST(min(${quoteIdent(c.name)}) AS VARCHAR) AS "min${i}"`, `CAST(max(${quoteIdent(c.name)}) AS VARCHAR) AS "max${i}"`]),
  ].join(", ");
  const row = (await runMaterialized(connection, `SELECT ${select} FROM read_parquet(${f})`)).getRowObjects()[0]!;
  const asStat = (type: string, text: unknown) => {
    if (text === null || text === undefined) return null;
    const t = parseKustoType(type, "");
    if (t === "datetime") return new Date(`${String(text).replace(" ", "T").replace(/\+00$/, "")}Z`).toISOString();
    if (t === "int" || t === "long" || t === "real" || t === "timespan" || t === "decimal") return Number(text);
    return String(text);
  };
  const minValues: Record<string, unknown> = {};
  const maxValues: Record<string, unknown> = {};
  statCols.forEach((c, i) => {
    const lo = asStat(c.type, row[`min${i}`]);
    const hi = asStat(c.type, row[`max${i}`]);
    if (lo !== null) minValues[c.name] = lo;
    if (hi !== null) maxValues[c.name] = hi;
  });
  const nullCount = Object.fromEntries(table.columns.map((c, i) => [c.name, Number(row[`nulls${i}`])]));
  return {
    path: relativePath.split("/").map(encodeURIComponent).join("/").replaceAll("%3D", "="),
    partitionValues: deltaPartitionValues(folder),
    size: (await stat(localFile)).size,
    modificationTime: 0,
    dataChange: true,
    stats: JSON.stringify({ numRecords: Number(row.n), minValues, maxValues, nullCount }),
  };
}

/** What the version holding a txn committed: its files and range; `fence` when it was a fence (files of no attempt). */
export interface CommittedRun {
  adds: AddAction[];
  toCursor: string;
  fence: boolean;
}

/**
 * The files and cursor range of the version that committed `txnVersion` for `appId`, if one
 * did. With `since` below `txnVersion` (a backfill batch, whose claims each have a version
 * from `since` on), an earlier claim's commit with files holds it too, while earlier claims'
 * fences do not; a later version (a later claim's fence or commit) holds it as a fence.
 */
export async function committedRun(log: DeltaLog, snap: DeltaSnapshot, appId: string, txnVersion: number, since = txnVersion): Promise<CommittedRun | undefined> {
  const latest = snap.txns.get(appId) ?? -1;
  if (latest < since) return undefined;
  /** The app's txn version a commit holds, if it is this app's. */
  const versionOf = (info: Record<string, unknown>) => {
    const s = spillwayInfo(info);
    return s?.appId === appId ? s.txnVersion : undefined;
  };
  const isIt = (info: Record<string, unknown>) => {
    const v = versionOf(info);
    return v === txnVersion || (v !== undefined && v >= since && v < txnVersion && spillwayInfo(info)?.fence !== true);
  };
  const described = (info: Record<string, unknown>, adds: AddAction[]) => {
    const s = spillwayInfo(info);
    return { adds, toCursor: s?.toCursor ?? "", fence: s?.fence === true };
  };
  for (const [version, info] of snap.commitInfos) if (isIt(info)) return described(info, snap.addsByVersion.get(version) ?? []);
  // Folded into a checkpoint: its version's own file is still in the log, and says what it
  // committed. A commit of the app below `since` ends the search: its versions only grow.
  const folded = await log.findCommit(isIt, (info) => (versionOf(info) ?? since) < since);
  if (folded) return described(folded.commitInfo, folded.adds);
  // Only earlier claims' fences: the batch is not committed, and this version may take it.
  if (latest < txnVersion) return undefined;
  return { adds: [], toCursor: "", fence: since < txnVersion };
}

/** What Spillway wrote into a commit's commitInfo (commitDelta): its txn, range and whether it is a fence. */
function spillwayInfo(info: Record<string, unknown>): { appId?: string; txnVersion?: number; toCursor?: string; fence?: boolean } | undefined {
  return info.spillway as { appId?: string; txnVersion?: number; toCursor?: string; fence?: boolean } | undefined;
}

/**
 * Commits the plan as the next version: put-if-absent of the version file; on a
 * conflict, re-reads the log and tries the version after, unless the log shows the txn
 * already committed (a retry whose first try landed, another attempt, a fence): then
 * `holder` is that commit. Writes a checkpoint every CHECKPOINT_INTERVAL versions.
 */
export async function commitDelta(log: DeltaLog, table: ExternalTable, plan: DeltaPlan, now: () => number): Promise<{ version: number; holder?: CommittedRun }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const snap = await log.snapshot();
    checkWritable(snap, table);
    const holder = await committedRun(log, snap, plan.appId, plan.txnVersion, plan.txnSince);
    if (holder) return { version: snap.version, holder };
    const version = snap.version + 1;
    const at = now();
    const actions: Action[] = [
      {
        commitInfo: {
          timestamp: at,
          operation: "WRITE",
          operationParameters: { mode: "Append", partitionBy: JSON.stringify(table.partitions.map((p) => p.name)) },
          isBlindAppend: true,
          engineInfo: "Spillway",
          spillway: { appId: plan.appId, txnVersion: plan.txnVersion, fromCursor: plan.fromCursor, toCursor: plan.toCursor, ...(plan.fence ? { fence: true } : {}) },
        },
      },
    ];
    if (!snap.protocol) actions.push({ protocol: { minReaderVersion: 1, minWriterVersion: 2 } });
    if (!snap.metaData) {
      actions.push({
        metaData: {
          id: crypto.randomUUID(),
          format: { provider: "parquet", options: {} },
          schemaString: deltaSchemaString(deltaColumns(table)),
          partitionColumns: table.partitions.map((p) => p.name),
          configuration: {},
          createdTime: at,
        },
      });
    }
    actions.push({ txn: { appId: plan.appId, version: plan.txnVersion, lastUpdated: at } });
    for (const add of plan.adds) actions.push({ add: { ...add, modificationTime: at } });
    if (await log.tryCommit(version, actions)) {
      if (version > 0 && version % CHECKPOINT_INTERVAL === 0) await log.writeCheckpoint(await log.snapshot());
      return { version };
    }
  }
  throw failedPrecondition(`could not commit to the Delta table of '${table.name}': 50 versions in a row were taken by other writers`);
}

export function deltaTarget(targets: StorageTarget[], table: ExternalTable): StorageTarget {
  if (targets.length !== 1) throw failedPrecondition(`Delta table '${table.name}' must have exactly one connection string`);
  return targets[0]!;
}
