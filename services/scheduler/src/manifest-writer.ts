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
  private lastError = "";

  constructor(
    private readonly peers: ManifestPeers,
    private readonly options: { pollMs?: number; log?: (line: string) => void } = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.writeDue(), this.options.pollMs ?? 1000);
    void this.writeDue();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
  }

  /** Writes what is due now; a failure is tried again on the next pass. */
  writeDue(): Promise<void> {
    this.writing ??= this.pass().finally(() => (this.writing = undefined));
    return this.writing;
  }

  private async pass(): Promise<void> {
    try {
      for (;;) {
        const { manifests } = await this.peers.cursor.listDueManifests({ limit: 20 });
        if (manifests.length === 0) return;
        for (const m of manifests) await this.write(m);
      }
    } catch (err) {
      const message = errorMessage(err);
      // Said once while the same thing keeps failing, not every second.
      if (message !== this.lastError) this.options.log?.(`scheduler: manifests not written yet (${message}); trying again`);
      this.lastError = message;
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
    this.lastError = "";
  }
}
