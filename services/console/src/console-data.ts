import { timestampDate, timestampFromMs, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { latenessSeconds } from "@spillway/kusto";
import type { ContinuousExport, ExportFailure, RunRecord } from "@spillway/proto";
import type { ConsolePeers } from "./peer-clients.js";

/** How far back the console's charts and lists of runs and failures go. */
export const WINDOW_MS = 24 * 3_600_000;
/** The most rows of one list a page shows: the newest. */
const MOST_ROWS = 200;
const RECENT_FAILURES = 20;

/** One export as the console lists it. */
export interface ExportRow {
  name: string;
  externalTable: string;
  enabled: boolean;
  lastRunResult: string;
  lastRunTime: string;
  exportedTo: string;
  running: boolean;
  /** How long the oldest record not yet exported has waited, in seconds (the lateness metric). */
  latenessSeconds: number;
  /** Records ingested and not yet exported. */
  recordsWaiting: number;
}

/** One point of a lateness chart: when a run committed (epoch seconds), and the lateness it ended (seconds). */
export type LatenessPoint = [number, number];

export interface FailureRow {
  export: string;
  timestamp: string;
  kind: string;
  permanent: boolean;
  details: string;
}

export interface RunRow {
  run: number;
  result: string;
  startedOn: string;
  durationMs: number;
  latenessSeconds: number | null;
  rowsRead: number;
  rowsWritten: number;
  bytesWritten: number;
  cpuMs: number;
  peakMemoryBytes: number;
  peakDuckdbMemoryBytes: number;
  parts: number;
  phases: string;
  details: string;
}

export interface Overview {
  database: string;
  generatedAt: string;
  runsInFlight: number;
  exports: ExportRow[];
  failures: FailureRow[];
  lateness: Record<string, LatenessPoint[]>;
}

export interface ExportPage {
  database: string;
  generatedAt: string;
  export: ExportRow & { query: string; queryLanguage: string; interval: string; startCursor: string };
  lateness: LatenessPoint[];
  runs: RunRow[];
  artifacts: Array<{ timestamp: string; path: string; records: number; bytes: number }>;
  failures: FailureRow[];
}

const iso = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : "");
const ms = (d: Duration | undefined) => (d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : 0);

/**
 * What the console shows, read from the catalog and the export ledger as the API gives it
 * (the console adds no state of its own). Lateness now is the metric's (SPEC §8, README
 * "Monitoring"): the age of the oldest record not yet exported; over time, the lateness each
 * run ended, from the run history.
 */
export class ConsoleData {
  constructor(
    private readonly peers: ConsolePeers,
    private readonly now: () => number = Date.now,
  ) {}

  async overview(database: string): Promise<Overview> {
    const since = this.since();
    const [{ exports }, { runs }] = await Promise.all([this.peers.catalog.listContinuousExports({ database }), this.peers.catalog.showRunHistory({ database, since })]);
    const rows = await this.exportRows(database, exports);
    const failures = (await Promise.all(exports.map(async (e) => (await this.peers.catalog.showFailures({ database, name: e.name })).failures.map((f) => failureRow(e.name, f))))).flat();
    const lateness: Record<string, LatenessPoint[]> = Object.fromEntries(exports.map((e) => [e.name, []]));
    for (const point of latenessPoints(runs)) lateness[point.export]?.push(point.point);
    return {
      database,
      generatedAt: new Date(this.now()).toISOString(),
      runsInFlight: rows.filter((r) => r.running).length,
      exports: rows,
      failures: failures
        .filter((f) => Date.parse(f.timestamp) >= this.now() - WINDOW_MS)
        .sort((a, b) => b.timestamp.localeCompare(a.timestamp))
        .slice(0, RECENT_FAILURES),
      lateness,
    };
  }

  async exportPage(database: string, name: string): Promise<ExportPage> {
    const since = this.since();
    const [{ export: shown }, { runs }, { artifacts }, { failures }] = await Promise.all([
      this.peers.catalog.showContinuousExport({ database, name }),
      this.peers.catalog.showRunHistory({ database, name, since }),
      this.peers.catalog.showExportedArtifacts({ database, name }),
      this.peers.catalog.showFailures({ database, name }),
    ]);
    const [row] = await this.exportRows(database, [shown!]);
    return {
      database,
      generatedAt: new Date(this.now()).toISOString(),
      export: { ...row!, query: shown!.query, queryLanguage: shown!.queryLanguage, interval: `${ms(shown!.intervalBetweenRuns) / 1000}s`, startCursor: shown!.startCursor },
      lateness: latenessPoints(runs).map((p) => p.point),
      runs: runs.slice(-MOST_ROWS).reverse().map(runRow),
      artifacts: artifacts
        .slice(-MOST_ROWS)
        .reverse()
        .map((a) => ({ timestamp: iso(a.timestamp), path: a.path, records: Number(a.numRecords), bytes: Number(a.sizeInBytes) })),
      failures: failures.slice(-MOST_ROWS).reverse().map((f) => failureRow(name, f)),
    };
  }

  private since(): Timestamp {
    return timestampFromMs(this.now() - WINDOW_MS);
  }

  /** The exports with their lateness and backlog now, read from the ledger as the metric reads them. */
  private async exportRows(database: string, exports: ContinuousExport[]): Promise<ExportRow[]> {
    // An export's fact tables are its cursor-scoped tables (the catalog resolves them at creation).
    const enabled = exports.filter((e) => !e.isDisabled);
    const { backlogs } = enabled.length
      ? await this.peers.cursor.getExportBacklogs({ exports: enabled.map((e) => ({ exportId: e.id, database, factTables: e.cursorScopedTables })) })
      : { backlogs: [] };
    const byId = new Map(backlogs.map((b) => [b.exportId, b]));
    return exports.map((e) => {
      const b = byId.get(e.id);
      return {
        name: e.name,
        externalTable: e.externalTableName,
        enabled: !e.isDisabled,
        lastRunResult: e.lastRunResult,
        lastRunTime: iso(e.lastRunTime),
        exportedTo: iso(e.exportedTo),
        running: e.isRunning,
        latenessSeconds: latenessSeconds(b?.oldestCursor, this.now()),
        recordsWaiting: Number(b?.records ?? 0n),
      };
    });
  }
}

/** The lateness each completed run ended, at its commit, oldest first. */
function latenessPoints(runs: RunRecord[]): Array<{ export: string; point: LatenessPoint }> {
  return runs
    .filter((r) => r.lateness && r.finishedOn)
    .map((r) => ({ export: r.exportName, point: [Number(r.finishedOn!.seconds) + r.finishedOn!.nanos / 1e9, ms(r.lateness) / 1000] as LatenessPoint }))
    .sort((a, b) => a.point[0] - b.point[0]);
}

function failureRow(exportName: string, f: ExportFailure): FailureRow {
  return { export: exportName, timestamp: iso(f.timestamp), kind: f.failureKind, permanent: f.isPermanent, details: f.details };
}

function runRow(r: RunRecord): RunRow {
  const res = r.resources;
  return {
    run: Number(r.runNumber),
    result: r.result,
    startedOn: iso(r.startedOn),
    durationMs: ms(r.duration),
    latenessSeconds: r.lateness ? ms(r.lateness) / 1000 : null,
    rowsRead: Number(res?.usage?.rowsRead ?? 0n),
    rowsWritten: Number(res?.rowsWritten ?? 0n),
    bytesWritten: Number(res?.bytesWritten ?? 0n),
    cpuMs: Number(res?.usage?.cpuTimeUs ?? 0n) / 1000,
    peakMemoryBytes: Number(res?.usage?.peakProcessMemoryBytes ?? 0n),
    peakDuckdbMemoryBytes: Number(res?.usage?.peakDuckdbMemoryBytes ?? 0n),
    parts: res?.parts ?? 0,
    phases: (res?.phases ?? []).map((p) => `${p.name} ${p.durationMs} ms`).join(", "),
    details: r.details,
  };
}
