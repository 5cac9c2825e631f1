import { ErrorCode, errorMessage, SpillwayError } from "@spillway/errors";
import type { SchedulerPeers } from "./peer-clients.js";

/** What writing manifests needs of the other services: the narrow interface its tests fake. */
export interface ManifestPeers {
  catalog: Pick<SchedulerPeers["catalog"], "planExport">;
  cursor: Pick<SchedulerPeers["cursor"], "listDueManifests" | "forgetManifest">;
  writer: Pick<SchedulerPeers["writer"], "writeManifest">;
}

/**
 * Writes the manifests of committed runs to storage (SPEC §6a). A commit records its manifest
 * as due in the same transaction, so every committed run has one and no failed run does;
 * this writes the due ones, from start-up on, until each lands (a retry overwrites with the
 * same content). On many nodes each one writes them: the second write is the same file.
 */
export class ManifestWriter {
  private timer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  /** Manifests that failed, by key: when to try again (doubling up to 5 minutes) and the last error said. */
  private readonly retries = new Map<string, { at: number; delayMs: number; error: string }>();

  constructor(
    private readonly peers: ManifestPeers,
    private readonly options: { pollMs?: number; log?: (line: string) => void; now?: () => number } = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.writeDue(), this.options.pollMs ?? 1000);
    void this.writeDue();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
  }

  /** Writes what is due now; one that fails waits its turn again, without holding the others back. */
  writeDue(): Promise<void> {
    this.writing ??= this.pass().finally(() => (this.writing = undefined));
    return this.writing;
  }

  private async pass(): Promise<void> {
    const now = (this.options.now ?? Date.now)();
    let due;
    try {
      ({ manifests: due } = await this.peers.cursor.listDueManifests({ limit: 200 }));
    } catch (err) {
      this.options.log?.(`scheduler: manifests due could not be read (${errorMessage(err)}); trying again`);
      return;
    }
    for (const m of due) {
      const retry = this.retries.get(m.key);
      if (retry && retry.at > now) continue;
      try {
        await this.write(m);
        this.retries.delete(m.key);
      } catch (err) {
        const error = errorMessage(err);
        const delayMs = Math.min(300_000, (retry?.delayMs ?? 500) * 2);
        // Said when it first fails and when its reason changes, not on every attempt.
        if (error !== retry?.error) this.options.log?.(`scheduler: manifest ${m.name} not written yet (${error}); trying again`);
        this.retries.set(m.key, { at: now + delayMs, delayMs, error });
      }
    }
  }

  private async write(m: { key: string; database: string; externalTable: string; name: string; bodyJson: string }): Promise<void> {
    let spec;
    try {
      ({ spec } = await this.peers.catalog.planExport({ database: m.database, externalTable: m.externalTable, targetOnly: true }));
    } catch (err) {
      // The table was dropped since the run: there is nowhere to write its manifest.
      if (err instanceof SpillwayError && err.code === ErrorCode.notFound) {
        this.options.log?.(`scheduler: manifest ${m.name} dropped: external table '${m.externalTable}' no longer exists`);
        await this.peers.cursor.forgetManifest({ key: m.key });
        return;
      }
      throw err;
    }
    await this.peers.writer.writeManifest({ externalTable: spec!.externalTable, name: m.name, bodyJson: m.bodyJson });
    await this.peers.cursor.forgetManifest({ key: m.key });
  }
}
