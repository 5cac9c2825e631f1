import { errorMessage, isPermanent } from "@spillway/errors";
import type { SchedulerPeers } from "./peer-clients.js";

/** What the sweep needs of the other services: the narrow interface its tests fake. */
export interface SweeperPeers {
  cursor: Pick<SchedulerPeers["cursor"], "listDroppedLeftovers" | "forgetDroppedLeftovers">;
  catalog: Pick<SchedulerPeers["catalog"], "planExport">;
  writer: Pick<SchedulerPeers["writer"], "deleteArtifacts">;
}

/** Leftovers one sweep takes at most; the next takes the rest. */
const PER_SWEEP = 1000;

/**
 * Removes the files a dropped export's journal still listed when it was purged. A drop leaves
 * a run in flight its files (it removes them when its commit is refused); a run whose node
 * died never will. Those kept `olderThanMs` (the run had that long to remove them itself) are
 * deleted from their external table, then forgotten. When the external table is gone, or
 * refuses for good, they cannot be reached: they are forgotten, and the log says which.
 */
export class LeftoverSweeper {
  constructor(
    private readonly peers: SweeperPeers,
    private readonly olderThanMs: number,
    private readonly log: (line: string) => void,
  ) {}

  private sweeping = false;

  /** One sweep, unless one is under way; the number of files it removed (or found already gone). */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      return await this.sweepOnce();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepOnce(): Promise<number> {
    const { leftovers } = await this.peers.cursor.listDroppedLeftovers({ olderThanMs: BigInt(this.olderThanMs), limit: PER_SWEEP });
    const byTable = new Map<string, typeof leftovers>();
    for (const l of leftovers) {
      const key = JSON.stringify([l.database, l.externalTable]);
      byTable.set(key, [...(byTable.get(key) ?? []), l]);
    }
    let removed = 0;
    for (const files of byTable.values()) {
      const { database, externalTable } = files[0]!;
      try {
        const { spec } = await this.peers.catalog.planExport({ database, externalTable, targetOnly: true });
        await this.peers.writer.deleteArtifacts({ externalTable: spec!.externalTable!, paths: files.map((f) => f.path) });
        removed += files.length;
      } catch (err) {
        // The external table gone (not found), or storage refusing for good: they cannot be
        // reached. Anything else (storage unreachable, say): the next sweep tries again.
        if (!isPermanent(err)) {
          this.log(`scheduler: could not remove ${files.length} files a dropped export left in external table '${externalTable}' (database '${database}'), will retry: ${errorMessage(err)}`);
          continue;
        }
        this.log(`scheduler: ${files.length} files a dropped export left in external table '${externalTable}' (database '${database}') cannot be removed, and are forgotten: ${errorMessage(err)}; they are ${files.map((f) => f.path).join(", ")}`);
      }
      for (const [exportId, paths] of groupPaths(files)) await this.peers.cursor.forgetDroppedLeftovers({ exportId, paths });
    }
    return removed;
  }
}

function groupPaths(files: Array<{ exportId: string; path: string }>): Map<string, string[]> {
  const byExport = new Map<string, string[]>();
  for (const f of files) byExport.set(f.exportId, [...(byExport.get(f.exportId) ?? []), f.path]);
  return byExport;
}
