import type { ExportSpec } from "@spillway/proto";

/** What the ledger keeps with a commit, for the manifest to be written after it (DueManifest). */
export interface ManifestToWrite {
  key: string;
  database: string;
  externalTable: string;
  name: string;
  bodyJson: string;
}

/**
 * One committed run's record, beside the data (SPEC §6a "Per-run manifests"), named
 * `<export>/<run number>-<run id>.json`: the run id keeps an export dropped and made again
 * under its name (whose run numbers start over) from overwriting the manifests of the first.
 */
export interface ManifestBody {
  version: 1;
  kind: "ContinuousExportRun" | "BackfillBatch" | "ExportToTable";
  database: string;
  /** The export, or the operation for a one-shot export. */
  export: string;
  externalTable: string;
  runId: string;
  runNumber?: number;
  fromCursor: string;
  toCursor: string;
  files: Array<{ path: string; numRecords: number; sizeInBytes: number; md5?: string | null }>;
}

/**
 * The manifest of a run that commits `artifacts` (none, when its query kept no record of
 * those it read), or none for a Delta table, whose log already is its manifest.
 */
export function manifestOf(
  spec: ExportSpec,
  run: { key: string; kind: ManifestBody["kind"]; name: string; exportName: string; runNumber?: bigint; from: bigint; to: bigint },
  artifacts: Array<{ path: string; numRecords: bigint; sizeBytes: bigint; md5?: string }>,
): ManifestToWrite | undefined {
  const table = spec.externalTable;
  if (!table || table.kind === "delta") return undefined;
  const body: ManifestBody = {
    version: 1,
    kind: run.kind,
    database: spec.database,
    export: run.exportName,
    externalTable: table.name,
    runId: run.key,
    runNumber: run.runNumber === undefined ? undefined : Number(run.runNumber),
    fromCursor: run.from.toString(),
    toCursor: run.to.toString(),
    // An MD5 the storage reported on upload is kept; the writer asks the storage for the others.
    files: artifacts.map((a) => ({ path: a.path, numRecords: Number(a.numRecords), sizeInBytes: Number(a.sizeBytes), ...(a.md5 ? { md5: a.md5 } : {}) })),
  };
  return { key: run.key, database: spec.database, externalTable: table.name, name: `_spillway/manifests/${run.name}.json`, bodyJson: JSON.stringify(body) };
}
