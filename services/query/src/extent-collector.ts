import { ErrorCode, errorMessage, SpillwayError } from "@spillway/errors";
import type { ExtentStore } from "@spillway/storage";
import type { QueryPeers } from "./peer-clients.js";

/**
 * Deletes the files of dropped tables' extents. The query service writes extents and so
 * owns their files (DESIGN "Scale-out": one owner per file); the cursor service only
 * records them, and when a table is dropped it hides its extents at once and lists their
 * files here, to be deleted and then forgotten.
 */
export class ExtentCollector {
  private timer: NodeJS.Timeout | undefined;
  private collecting: Promise<unknown> | undefined;

  constructor(
    private readonly cursor: Pick<QueryPeers["cursor"], "listDroppedExtents" | "forgetDroppedExtents">,
    private readonly extents: Pick<ExtentStore, "delete">,
    private readonly log: (line: string) => void,
    private readonly everyMs = 2000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.collecting ??= this.collect()
        .catch((err) => this.log(`query: dropped extents could not be removed yet: ${errorMessage(err)}`))
        .finally(() => (this.collecting = undefined));
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.collecting;
  }

  /** Deletes what is listed now; true when there was something. */
  async collect(): Promise<boolean> {
    const { extents } = await this.cursor.listDroppedExtents({ limit: 500 });
    for (const e of extents) {
      try {
        await this.extents.delete(e.path);
      } catch (err) {
        // A record naming something outside the extent store is forgotten, never followed.
        if (!(err instanceof SpillwayError && err.code === ErrorCode.invalidArgument)) throw err;
      }
    }
    await this.cursor.forgetDroppedExtents({ extentIds: extents.map((e) => e.extentId) });
    return extents.length > 0;
  }
}
