import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CatalogStore } from "./catalog-store.js";
import { catalogStoreContract } from "./catalog-store.contract.js";
import { usePostgres, type Postgres } from "../../../test/support/postgres.js";

catalogStoreContract("DuckDB", (dir) => CatalogStore.open(dir));

describe("CatalogStore on PostgreSQL", () => {
  let postgres: Postgres;
  beforeAll(async () => {
    postgres = await usePostgres();
  });
  afterAll(() => postgres?.stop());
  catalogStoreContract("PostgreSQL", (url) => CatalogStore.open("", url), {
    create: () => postgres.createDatabase(),
    remove: (url) => postgres.dropDatabase(url),
  });

  it("shows each node what any node committed, at its next read", async () => {
    const url = await postgres.createDatabase();
    const [a, b] = await Promise.all([CatalogStore.open("", url), CatalogStore.open("", url)]);
    try {
      expect(await b.list("table")).toEqual([]);
      const before = b.version;
      await a.write((tx) => tx.put("table", "db", "T", "T v1"));
      expect(await b.get("table", "db", "T")).toBe("T v1");
      // What b derived from its copy (the export listing) knows to be rebuilt.
      expect(b.version).toBeGreaterThan(before);
      await b.write((tx) => tx.put("table", "db", "U", "U v1"));
      await a.write((tx) => tx.put("table", "db", "T", "T v2"));
      expect(await a.list("table", "db")).toEqual(["T v2", "U v1"]);
      expect(await b.list("table", "db")).toEqual(["T v2", "U v1"]);
      await b.write(async (tx) => expect(await tx.delete("table", "db", "T")).toBe(true));
      expect(await a.list("table", "db")).toEqual(["U v1"]);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await postgres.dropDatabase(url);
    }
  });

  it("lets one of two nodes creating the same name at once win, the other seeing it in its transaction", async () => {
    const url = await postgres.createDatabase();
    const [a, b] = await Promise.all([CatalogStore.open("", url), CatalogStore.open("", url)]);
    try {
      // Create-if-absent, as the catalog checks clashes: both at once, one must find the other's.
      const create = (store: CatalogStore, body: string) =>
        store.write(async (tx) => {
          if (await tx.get("table", "db", "Same")) return "clash";
          await tx.put("table", "db", "Same", body);
          return "created";
        });
      const results = await Promise.all([create(a, "from a"), create(b, "from b")]);
      expect(results.sort()).toEqual(["clash", "created"]);
      expect(await a.list("table", "db")).toEqual(await b.list("table", "db"));
      expect((await a.list("table", "db")).length).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await postgres.dropDatabase(url);
    }
  });
});
