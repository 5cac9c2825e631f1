import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ExternalTableSchema, type ExternalTable } from "@spillway/proto";
import type { DeltaPlan } from "./delta-table-writer.js";

/** One staged artifact as the manifest keeps it: where its file is, where it goes. */
export interface ManifestArtifact {
  /** The encoded file, relative to the stage folder. */
  file: string;
  /** Its name under the target (partition folder included). */
  name: string;
  folder: string;
  /** Which of the table's connection strings it goes to. */
  target: number;
  path: string;
  numRecords: string;
  sizeInBytes: string;
}

export interface StageManifest {
  table: ExternalTable;
  artifacts: ManifestArtifact[];
  delta?: DeltaPlan;
}

const MANIFEST = "stage.json";

/**
 * A stage is durable (DESIGN "Scale-out": any writer can finish a staged run): its encoded
 * files and this manifest stay in the stage folder until the upload or a discard, so a
 * writer that restarted between staging and upload still uploads the same files under the
 * same names, and the run commits once. Written whole, then renamed: a stage folder holds
 * a complete manifest or none.
 */
export async function writeStageManifest(stageDir: string, manifest: StageManifest): Promise<void> {
  const body = JSON.stringify({
    table: toJson(ExternalTableSchema, manifest.table),
    artifacts: manifest.artifacts,
    delta: manifest.delta,
  });
  // The table's connection strings carry storage secrets: only this process's user may read them.
  await writeFile(join(stageDir, `${MANIFEST}.partial`), body, { mode: 0o600 });
  await rename(join(stageDir, `${MANIFEST}.partial`), join(stageDir, MANIFEST));
}

/** The stage's manifest, or undefined when there is no complete stage in the folder. */
export async function readStageManifest(stageDir: string): Promise<StageManifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(stageDir, MANIFEST), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as { table: JsonValue; artifacts: ManifestArtifact[]; delta?: DeltaPlan };
  return { table: fromJson(ExternalTableSchema, parsed.table), artifacts: parsed.artifacts, delta: parsed.delta };
}
