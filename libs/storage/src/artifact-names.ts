import type { ExternalTable } from "@spillway/proto";
import { parseConnectionString } from "./connection-string.js";
import { locationPathOf } from "./storage-target.js";

/*
 * How a run's artifacts are named, in one place for the writer, which names them as it
 * stages them, and the scheduler, which journals the names of a run's files beside the
 * staging rather than after it (README "Benchmarks", #3).
 */

/** The artifact's file name: prefix, the run's stem, the format's extension (and .gz). */
export function artifactFileName(table: ExternalTable, stem: string): string {
  const p = table.properties;
  const ext = p?.fileExtension ? p.fileExtension.replace(/^\./, "") : table.dataFormat;
  return `${p?.namePrefix ?? ""}${stem}.${ext}${p?.compressed && table.dataFormat !== "parquet" ? ".gz" : ""}`;
}

/** A stable small number from a run's artifact stem, so runs spread over the connection strings. */
export function spreadKeyOf(stem: string): number {
  let h = 0;
  for (const ch of stem) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h;
}

/** Which of `targets` connection strings a stage's artifact number `k` goes to: evenly, from the stem's spread key (SPEC §5). */
export function artifactTargetIndex(k: number, spreadKey: number, targets: number): number {
  return (k + spreadKey) % targets;
}

/** The name of a stage's artifact number `k` in a folder of no partition: the stem numbered. */
export function stagedArtifactName(table: ExternalTable, stem: string, k: number): string {
  return artifactFileName(table, `${stem}_${k}`);
}

/**
 * The full paths a stage of `files` encoded files of an unpartitioned, non-Delta table gets
 * under artifact stem `stem`: the writer names them so (its stage may keep fewer, numbered
 * from 0, when a last file holds no row). Undefined where the names depend on the rows
 * (partition folders) or on the writer (Delta's part files), or a connection string cannot
 * be read.
 */
export function plannedArtifactPaths(table: ExternalTable, stem: string, files: number): string[] | undefined {
  if (table.kind === "delta" || table.partitions.length > 0 || table.connectionStrings.length === 0 || files <= 0) return undefined;
  let locations;
  try {
    locations = table.connectionStrings.map(parseConnectionString);
  } catch {
    return undefined;
  }
  const spreadKey = spreadKeyOf(stem);
  return Array.from({ length: files }, (_, k) => locationPathOf(locations[artifactTargetIndex(k, spreadKey, locations.length)]!, stagedArtifactName(table, stem, k)));
}

const DELTA_HOLD_ENTRY = "delta-hold:";

/**
 * The journal entry of a Delta run's hold of its txn (an empty log commit for its range): it
 * names no file, and is journaled as files are so it keeps a cursor reset out until the
 * ledger records the run (README "A node that died mid-run"). Removing it removes nothing.
 */
export function deltaHoldEntry(exportId: string, txnVersion: bigint): string {
  return `${DELTA_HOLD_ENTRY}${exportId}:${txnVersion}`;
}

/** Whether a journal entry names a file (not a Delta run's hold). */
export function namesFile(entry: string): boolean {
  return !entry.startsWith(DELTA_HOLD_ENTRY);
}
