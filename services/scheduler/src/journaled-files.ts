import type { ExternalTable } from "@spillway/proto";
import { withRetry, type RetryOptions } from "@spillway/rpc";
import type { SchedulerPeers } from "./peer-clients.js";

/**
 * Removes files an attempt journaled from the table's storage, and answers those whose journal
 * entries may go: all but the files a Delta log's commit holds, which the writer keeps, and
 * which stay journaled until the ledger records that commit (commitRun, commitBackfillBatch
 * and finishOperation clear them by path). Until then the journal keeps a cursor reset out.
 */
export async function removeJournaledFiles(writer: Pick<SchedulerPeers["writer"], "deleteArtifacts">, externalTable: ExternalTable | undefined, paths: string[], retry: RetryOptions): Promise<string[]> {
  const { kept } = await withRetry(() => writer.deleteArtifacts({ externalTable, paths }), retry);
  const keptSet = new Set(kept);
  return paths.filter((p) => !keptSet.has(p));
}
