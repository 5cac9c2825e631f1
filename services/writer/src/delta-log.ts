import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { quoteLiteral, runMaterialized } from "@spillway/duck";
import { failedPrecondition } from "@spillway/errors";
import type { StorageTarget } from "@spillway/storage";

// The Delta transaction log, written to delta-io/delta PROTOCOL.md: one JSON file of
// actions per version under _delta_log/, created put-if-absent so two writers never both
// win a version; a Parquet checkpoint every CHECKPOINT_INTERVAL versions.

export const CHECKPOINT_INTERVAL = 10;
const LOG = "_delta_log/";

export interface AddAction {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats: string;
}

export interface MetaDataAction {
  id: string;
  name?: string | null;
  description?: string | null;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration: Record<string, string>;
  createdTime: number;
}

export interface ProtocolAction {
  minReaderVersion: number;
  minWriterVersion: number;
}

export interface TxnAction {
  appId: string;
  version: number;
  lastUpdated?: number;
}

export type Action =
  | { add: AddAction }
  | { remove: { path: string; deletionTimestamp?: number; dataChange: boolean } }
  | { metaData: MetaDataAction }
  | { protocol: ProtocolAction }
  | { txn: TxnAction }
  | { commitInfo: Record<string, unknown> };

/** The table as of one version: what a writer must know to commit the next. */
export interface DeltaSnapshot {
  /** -1 when the table does not exist yet. */
  version: number;
  protocol?: ProtocolAction;
  metaData?: MetaDataAction;
  txns: Map<string, number>;
  files: Map<string, AddAction>;
  /** commitInfo of each version read from JSON (not those folded into a checkpoint). */
  commitInfos: Map<number, Record<string, unknown>>;
  /** add actions of each version read from JSON. */
  addsByVersion: Map<number, AddAction[]>;
}

export const versionFile = (v: number) => `${LOG}${String(v).padStart(20, "0")}.json`;
const checkpointFile = (v: number) => `${LOG}${String(v).padStart(20, "0")}.checkpoint.parquet`;

const CHECKPOINT_COLUMNS = `{
  'txn': 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)',
  'add': 'STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR)',
  'remove': 'STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN)',
  'metaData': 'STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)',
  'protocol': 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)'
}`;

export class DeltaLog {
  constructor(
    private readonly target: StorageTarget,
    private readonly connection: DuckDBConnection,
    /** A scratch folder the (sandboxed) DuckDB may read and write. */
    private readonly scratch: string,
  ) {}

  /** Replays the log from the last checkpoint. */
  async snapshot(): Promise<DeltaSnapshot> {
    const snap: DeltaSnapshot = { version: -1, txns: new Map(), files: new Map(), commitInfos: new Map(), addsByVersion: new Map() };
    const versions = await this.versions();
    let from = 0;
    const checkpoint = await this.checkpointVersion();
    if (checkpoint !== undefined) {
      for (const action of await this.readCheckpoint(checkpoint)) apply(snap, action, checkpoint);
      snap.version = checkpoint;
      from = checkpoint + 1;
    }
    for (const v of versions.filter((x) => x >= from)) {
      const actions = await this.readVersion(v);
      if (!actions) continue;
      for (const action of actions) apply(snap, action, v, true);
      snap.version = v;
    }
    return snap;
  }

  /** The versions the log has a file of, oldest first. */
  private async versions(): Promise<number[]> {
    return (await this.target.list(LOG))
      .map((n) => /^_delta_log\/(\d{20})\.json$/.exec(n)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** The version of the last checkpoint, if there is one. */
  private async checkpointVersion(): Promise<number | undefined> {
    const last = await this.target.read(`${LOG}_last_checkpoint`);
    return last ? (JSON.parse(last.toString("utf8")) as { version: number }).version : undefined;
  }

  /** The actions of version `v`'s file; undefined when it is gone. */
  private async readVersion(v: number): Promise<Action[] | undefined> {
    const body = await this.target.read(versionFile(v));
    return body?.toString("utf8").split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line) as Action);
  }

  /**
   * The newest version, of those a checkpoint folded, whose commitInfo `matches`, with its add
   * actions: read from its own file (versions are kept after a checkpoint), newest first, up to
   * one whose commitInfo says no older version can match (`stopAt`).
   */
  async findCommit(matches: (commitInfo: Record<string, unknown>) => boolean, stopAt: (commitInfo: Record<string, unknown>) => boolean = () => false): Promise<{ version: number; commitInfo: Record<string, unknown>; adds: AddAction[] } | undefined> {
    const checkpoint = await this.checkpointVersion();
    if (checkpoint === undefined) return undefined;
    for (const v of (await this.versions()).filter((x) => x <= checkpoint).reverse()) {
      const actions = await this.readVersion(v);
      if (!actions) continue;
      const info = actions.find((a): a is { commitInfo: Record<string, unknown> } => "commitInfo" in a);
      if (info && matches(info.commitInfo)) return { version: v, commitInfo: info.commitInfo, adds: actions.flatMap((a) => ("add" in a ? [a.add] : [])) };
      if (info && stopAt(info.commitInfo)) return undefined;
    }
    return undefined;
  }

  /** Writes version `v`; false when another writer already created it. */
  async tryCommit(v: number, actions: Action[]): Promise<boolean> {
    return this.target.putIfAbsent(versionFile(v), Buffer.from(actions.map((a) => JSON.stringify(a)).join("\n") + "\n"));
  }

  /** A Parquet checkpoint of `snap` (the state as of its version) and _last_checkpoint pointing at it. */
  async writeCheckpoint(snap: DeltaSnapshot): Promise<void> {
    const actions: Action[] = [];
    if (snap.protocol) actions.push({ protocol: snap.protocol });
    if (snap.metaData) actions.push({ metaData: snap.metaData });
    for (const [appId, version] of snap.txns) actions.push({ txn: { appId, version } });
    for (const add of snap.files.values()) actions.push({ add });
    const id = randomUUID();
    const json = join(this.scratch, `${id}.json`);
    const parquet = join(this.scratch, `${id}.parquet`);
    try {
      await writeFile(json, actions.map((a) => JSON.stringify(a)).join("\n") + "\n");
      await this.connection.run(
        `COPY (SELECT * FROM read_json(${quoteLiteral(json)}, format = 'newline_delimited', columns = ${CHECKPOINT_COLUMNS})) TO ${quoteLiteral(parquet)} (FORMAT parquet)`,
      );
      await this.target.put(checkpointFile(snap.version), parquet);
      await this.target.putOverwrite(`${LOG}_last_checkpoint`, Buffer.from(JSON.stringify({ version: snap.version, size: actions.length }) + "\n"));
    } finally {
      await rm(json, { force: true });
      await rm(parquet, { force: true });
    }
  }

  private async readCheckpoint(version: number): Promise<Action[]> {
    const body = await this.target.read(checkpointFile(version));
    if (!body) throw failedPrecondition(`the Delta log names checkpoint ${version}, which is missing`);
    const file = join(this.scratch, `${randomUUID()}.parquet`);
    try {
      await writeFile(file, body);
      const rows = (await runMaterialized(this.connection, `SELECT to_json(t)::VARCHAR AS j FROM read_parquet(${quoteLiteral(file)}) t`)).getRows();
      return rows.map((r) => {
        const row = JSON.parse(String(r[0])) as Record<string, unknown>;
        const key = Object.keys(row).find((k) => row[k] !== null)!;
        return { [key]: row[key] } as Action;
      });
    } finally {
      await rm(file, { force: true });
    }
  }
}

function apply(snap: DeltaSnapshot, action: Action, version: number, fromJson = false): void {
  if ("protocol" in action) snap.protocol = action.protocol;
  else if ("metaData" in action) snap.metaData = action.metaData;
  else if ("txn" in action) snap.txns.set(action.txn.appId, Math.max(action.txn.version, snap.txns.get(action.txn.appId) ?? -1));
  else if ("add" in action) {
    snap.files.set(action.add.path, action.add);
    if (fromJson) snap.addsByVersion.set(version, [...(snap.addsByVersion.get(version) ?? []), action.add]);
  } else if ("remove" in action) snap.files.delete(action.remove.path);
  else if ("commitInfo" in action && fromJson) snap.commitInfos.set(version, action.commitInfo);
}
