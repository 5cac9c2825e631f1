import { fromJsonString } from "@bufbuild/protobuf";
import { errorMessage, redactSecrets } from "@spillway/errors";
import { ExternalTableSchema, type ExternalTable } from "@spillway/proto";
import { namesFile } from "@spillway/storage";
import type { CatalogStore, CatalogTransaction, DefinitionKind } from "./catalog-store.js";
import type { CatalogPeers } from "./peer-clients.js";

/**
 * Files a dropped export's runs journaled that the drop could not remove: a run held the
 * export's lease then, and is left to remove its own files when its commit finds the export
 * gone. When that run's node died instead, no one would: the files stay in the table's
 * storage and their journal entries in the ledger. The drop records them here, with the
 * external table as it was (its secrets stay in the catalog store, as the table's do), and a
 * sweep removes what the journal still lists once the run's lease has surely gone.
 */
const LEFTOVERS_KIND: DefinitionKind = "export_leftovers";

/** A sweep that fails keeps trying for this long (storage may be down), then lets the leftovers go, saying so. */
const LEFTOVERS_GIVE_UP_AFTER_MS = 7 * 86_400_000;

interface Leftovers {
  exportId: string;
  database: string;
  exportName: string;
  /** The external table's stored body (its definition, connection strings included). */
  externalTable: string;
  droppedAtMs: number;
}

/** Removes the files an export's journal lists from its table's storage, then from the journal; how many files it listed. */
export async function removeJournaled(peers: Pick<CatalogPeers, "cursor" | "writer">, exportId: string, externalTable: ExternalTable, pending: Array<{ path: string }>): Promise<number> {
  const paths = [...new Set(pending.map((p) => p.path))];
  if (paths.length === 0) return 0;
  await peers.writer.deleteArtifacts({ externalTable, paths });
  await peers.cursor.clearPending({ exportId, paths });
  return paths.filter(namesFile).length;
}

/** Records, in the drop's own write, that the export's journal may list files left to a run in flight. */
export async function recordLeftovers(tx: CatalogTransaction, leftovers: Leftovers): Promise<void> {
  await tx.put(LEFTOVERS_KIND, leftovers.database, leftovers.exportId, JSON.stringify(leftovers));
}

export interface SweepOutcome {
  /** Files removed from storage. */
  removed: number;
  /** Drops whose leftovers are done with: removed, or given up on. */
  finished: number;
  /** Why a drop's leftovers could not be removed (secrets redacted). */
  failures: string[];
}

/**
 * Removes the files dropped exports' journals still list once `minAgeMs` passed since the
 * drop: whatever a run in flight did not remove itself (its node died). Safe to run on
 * every node at once: removals and clearing the journal are idempotent. A run still alive
 * that uploads after the sweep removes its own files when its commit is refused.
 */
export async function sweepLeftovers(store: CatalogStore, peers: Pick<CatalogPeers, "cursor" | "writer">, now: number, minAgeMs: number): Promise<SweepOutcome> {
  const outcome: SweepOutcome = { removed: 0, finished: 0, failures: [] };
  for (const body of await store.list(LEFTOVERS_KIND)) {
    let leftovers: Leftovers;
    try {
      leftovers = JSON.parse(body) as Leftovers;
    } catch {
      // Never written so; one such record must not keep the others from being swept.
      outcome.failures.push("a record of files left by a dropped continuous export could not be read; it is kept as it is");
      continue;
    }
    if (now - leftovers.droppedAtMs < minAgeMs) continue;
    try {
      const { pending } = await peers.cursor.listPendingArtifacts({ exportId: leftovers.exportId });
      outcome.removed += await removeJournaled(peers, leftovers.exportId, fromJsonString(ExternalTableSchema, leftovers.externalTable), pending);
    } catch (err) {
      const why = `files left by dropped continuous export '${leftovers.exportName}' of database '${leftovers.database}' could not be removed: ${redactSecrets(errorMessage(err))}`;
      if (now - leftovers.droppedAtMs < LEFTOVERS_GIVE_UP_AFTER_MS) {
        outcome.failures.push(`${why}; trying again later`);
        continue;
      }
      outcome.failures.push(`${why}; given up on after 7 days`);
    }
    await store.write((tx) => tx.delete(LEFTOVERS_KIND, leftovers.database, leftovers.exportId));
    outcome.finished++;
  }
  return outcome;
}
