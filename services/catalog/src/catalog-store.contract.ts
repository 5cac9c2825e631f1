import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { temporaryFolders, type StorePlaces } from "@spillway/metadata";
import type { CatalogStore } from "./catalog-store.js";

/**
 * What every catalog store must do (DESIGN "Scale-out": an embedded DuckDB implementation
 * and a PostgreSQL one, held to one contract). `open` gives the store kept under `place`
 * (a folder for DuckDB); opening the same place again must find what was committed.
 */
export function catalogStoreContract(implementation: string, open: (place: string) => Promise<CatalogStore>, places: StorePlaces = temporaryFolders("spillway-catalog-")): void {
  let dir: string;
  let store: CatalogStore;

  beforeEach(async () => {
    dir = await places.create();
    store = await open(dir);
  });

  afterEach(async () => {
    await store.close();
    await places.remove(dir);
  });

  describe(`catalog store contract (${implementation})`, () => {
    it("reads what committed, ordered by database and name, and again after reopening", async () => {
      await store.write(async (tx) => {
        await tx.put("table", "db2", "A", "db2.A");
        await tx.put("table", "db1", "B", "db1.B");
        await tx.put("table", "db1", "A", "db1.A");
        await tx.put("external_table", "db1", "A", "ext");
      });
      await store.write(async (tx) => {
        await tx.put("table", "db1", "B", "db1.B v2");
      });
      expect(await store.list("table")).toEqual(["db1.A", "db1.B v2", "db2.A"]);
      expect(await store.list("table", "db1")).toEqual(["db1.A", "db1.B v2"]);
      expect(await store.get("external_table", "db1", "A")).toBe("ext");

      await store.write(async (tx) => expect(await tx.delete("table", "db1", "A")).toBe(true));
      expect(await store.get("table", "db1", "A")).toBeUndefined();

      await store.close();
      store = await open(dir);
      expect(await store.list("table")).toEqual(["db1.B v2", "db2.A"]);
      expect(await store.list("external_table")).toEqual(["ext"]);
    });

    it("shows nothing of a transaction that failed, in memory or on disk", async () => {
      await store.write((tx) => tx.put("table", "db", "Kept", "kept"));
      await expect(
        store.write(async (tx) => {
          await tx.put("table", "db", "New", "new");
          await tx.delete("table", "db", "Kept");
          expect(await tx.list("table", "db")).toEqual(["new"]);
          throw new Error("clash");
        }),
      ).rejects.toThrow("clash");
      expect(await store.list("table", "db")).toEqual(["kept"]);
      // Only committed changes move the version that derived data (the export listing) is kept by.
      const version = store.version;
      await store.write(async (tx) => tx.get("table", "db", "Kept"));
      expect(store.version).toBe(version);
      await store.write((tx) => tx.put("table", "db", "Other", "other"));
      expect(store.version).toBe(version + 1);
      await store.close();
      store = await open(dir);
      expect(await store.list("table", "db")).toEqual(["kept", "other"]);
    });
    it("keeps the audit log per database, oldest first, and drops what is past 30 days", async () => {
      const at = (iso: string) => ({ startedOn: new Date(iso), durationMs: 3, principal: "aaduser=a", commandType: "CatalogService/CreateTable", object: "T", state: "Completed", failureReason: "", text: "{}" });
      await store.recordCommand({ ...at(new Date().toISOString()), database: "db", object: "pruning" });
      // Recorded after this process last deleted what is past retention: left out all the same.
      await store.recordCommand({ ...at(new Date(Date.now() - 31 * 86_400_000).toISOString()), database: "db" });
      await store.recordCommand({ ...at(new Date(Date.now() - 1000).toISOString()), database: "db", object: "second" });
      await store.recordCommand({ ...at(new Date(Date.now() - 2000).toISOString()), database: "db", object: "first" });
      await store.recordCommand({ ...at(new Date().toISOString()), database: "other" });
      const listed = await store.listCommands("db");
      expect(listed.map((c) => c.object)).toEqual(["first", "second", "pruning"]);
      expect(listed[0]).toMatchObject({ principal: "aaduser=a", durationMs: 3, state: "Completed" });
    });
    it("replaces a call's InProgress record with its outcome, and adds an outcome whose first record never came", async () => {
      const startedOn = new Date(Date.now() - 5000);
      const call = { startedOn, principal: "aaduser=a", commandType: "CatalogService/RunContinuousExportNow", database: "db", object: "E", failureReason: "", text: "{}" };
      await store.recordCommand({ ...call, commandId: "c1", durationMs: 0, state: "InProgress" });
      await store.recordCommand({ ...call, commandId: "c2", durationMs: 0, state: "InProgress" });
      expect((await store.listCommands("db")).map((c) => c.state)).toEqual(["InProgress", "InProgress"]);
      await store.recordCommand({ ...call, commandId: "c1", durationMs: 25, state: "Failed", failureReason: "no" });
      await store.recordCommand({ ...call, commandId: "c3", durationMs: 7, state: "Completed" });
      // c3's first record, late: its outcome stays the call's one record.
      await store.recordCommand({ ...call, commandId: "c3", durationMs: 0, state: "InProgress" });
      const listed = await store.listCommands("db");
      expect(listed.map((c) => [c.state, c.durationMs, c.failureReason])).toEqual(
        expect.arrayContaining([
          ["Failed", 25, "no"],
          ["InProgress", 0, ""],
          ["Completed", 7, ""],
        ]),
      );
      expect(listed).toHaveLength(3);
      expect(listed.map((c) => c.commandId).sort()).toEqual(["c1", "c2", "c3"]);
    });

  });
}
