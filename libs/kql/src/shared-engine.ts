import { createKqlEngine, type KqlEngine } from "./kql-engine.js";

let shared: KqlEngine | undefined;

/**
 * The process's one KQL engine, started on first use: the parser's worker costs seconds and
 * about 200 MB, so a process that never sees KQL never pays for it, and modules hosted in one
 * process (`--target=all`) share it.
 */
export function sharedKqlEngine(): KqlEngine {
  shared ??= createKqlEngine();
  return shared;
}

/** Stops the shared engine, if it was started (on shutdown). */
export async function closeSharedKqlEngine(): Promise<void> {
  const engine = shared;
  shared = undefined;
  await engine?.close();
}
