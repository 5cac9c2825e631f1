import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalExtentStore } from "@spillway/storage";
import { ExtentCollector } from "./extent-collector.js";

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "spillway-collector-"));
  mkdirSync(join(dataDir, "extents/db/T"), { recursive: true });
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

/** A cursor service's dropped-extents list, as the narrow interface the collector uses. */
function droppedList(extents: Array<{ extentId: string; path: string }>) {
  const forgotten: string[] = [];
  return {
    forgotten,
    cursor: {
      listDroppedExtents: async () => ({ extents: extents.filter((e) => !forgotten.includes(e.extentId)) }) as never,
      forgetDroppedExtents: async (req: { extentIds?: string[] }) => (forgotten.push(...(req.extentIds ?? [])), {}) as never,
    },
  };
}

describe("ExtentCollector", () => {
  it("deletes the files of dropped extents, then has the cursor service forget them", async () => {
    writeFileSync(join(dataDir, "extents/db/T/e1.parquet"), "x");
    writeFileSync(join(dataDir, "extents/db/T/kept.parquet"), "x");
    const { cursor, forgotten } = droppedList([
      { extentId: "e1", path: "extents/db/T/e1.parquet" },
      { extentId: "e2", path: "extents/db/T/already-gone.parquet" },
    ]);
    const collector = new ExtentCollector(cursor, new LocalExtentStore(dataDir), () => {});
    expect(await collector.collect()).toBe(true);
    expect(existsSync(join(dataDir, "extents/db/T/e1.parquet"))).toBe(false);
    expect(existsSync(join(dataDir, "extents/db/T/kept.parquet"))).toBe(true);
    expect(forgotten).toEqual(["e1", "e2"]);
    expect(await collector.collect()).toBe(false);
  });

  it("deletes nothing outside its extents folder, whatever the list says", async () => {
    writeFileSync(join(dataDir, "catalog.duckdb"), "x");
    const { cursor } = droppedList([
      { extentId: "a", path: "catalog.duckdb" },
      { extentId: "b", path: "extents/../catalog.duckdb" },
      { extentId: "c", path: join(dataDir, "catalog.duckdb") },
    ]);
    await new ExtentCollector(cursor, new LocalExtentStore(dataDir), () => {}).collect();
    expect(existsSync(join(dataDir, "catalog.duckdb"))).toBe(true);
  });
});
