import { rm } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";
import { errorMessage } from "@spillway/errors";
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
    private readonly dataDir: string,
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
      const file = join(this.dataDir, e.path);
      // Only files in the extents folder are the query service's to delete.
      if (isAbsolute(e.path) || relative(join(this.dataDir, "extents"), file).startsWith("..")) continue;
      await rm(file, { force: true });
    }
    await this.cursor.forgetDroppedExtents({ extentIds: extents.map((e) => e.extentId) });
    return extents.length > 0;
  }
}
