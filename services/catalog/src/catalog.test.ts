import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Caller } from "@spillway/auth";
import type { SpillwayConfig } from "@spillway/config";
import { QueryDescriber } from "@spillway/duck";
import { ErrorCode } from "@spillway/errors";
import { deltaHoldEntry } from "@spillway/storage";
import { closeSharedKqlEngine, sharedKqlEngine } from "@spillway/kql";
import { create } from "@bufbuild/protobuf";
import { CreateExternalTableRequestSchema, CreateOrAlterContinuousExportRequestSchema, CreateTableRequestSchema, CursorService } from "@spillway/proto";
import { createLocalClient } from "@spillway/rpc";
import { createCursorModule } from "../../cursor/src/index.js";
import { Catalog } from "./catalog.js";
import { sweepLeftovers } from "./drop-leftovers.js";
import { CatalogStore } from "./catalog-store.js";
import type { KqlTranslator } from "./export-definition.js";
import type { CatalogPeers } from "./peer-clients.js";

// Continuous exports written in KQL, against a real store, the real cursor service (export
// states), DuckDB's describer and Microsoft's parser.

const CALLER: Caller = { principal: "aaduser=test", may: () => true };
const HOUR = { seconds: 3600n };
const KQL = 'Events | where Level == "Error" | join kind=inner Hosts on Host | project Timestamp, Host, Owner, Count';

let dir: string;
let store: CatalogStore;
let describer: QueryDescriber;
let cursorModule: Awaited<ReturnType<typeof createCursorModule>>;
let peers: CatalogPeers;
/** Every translation the catalog asks for, made by the real engine. */
let translations: string[];
let catalog: Catalog;

const translator = (): KqlTranslator => ({
  translateQuery: (text, schema) => {
    translations.push(text);
    return sharedKqlEngine().translateQuery(text, schema);
  },
});

const newCatalog = () => new Catalog(store, peers, { minIntervalMs: 1000, minSizeLimit: 1024 }, { roots: [], dataDir: dir }, describer, translator);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spillway-catalog-kql-"));
  store = await CatalogStore.open(dir);
  describer = await QueryDescriber.open();
  cursorModule = await createCursorModule({ dataDir: dir } as SpillwayConfig);
  peers = {
    cursor: createLocalClient(CursorService, cursorModule.handlers),
    // Creating exports on blob targets never asks the writer.
    writer: new Proxy({}, { get: (_, method) => () => Promise.reject(new Error(`unexpected writer call ${String(method)}`)) }) as CatalogPeers["writer"],
  };
  translations = [];
  catalog = newCatalog();
  const events = [{ name: "Timestamp", type: "datetime" }, { name: "Level", type: "string" }, { name: "Host", type: "string" }, { name: "Count", type: "long" }];
  await catalog.createTable(create(CreateTableRequestSchema, { database: "db", name: "Events", columns: events }), CALLER);
  await catalog.createTable(create(CreateTableRequestSchema, { database: "db", name: "Hosts", columns: [{ name: "Host", type: "string" }, { name: "Owner", type: "string" }] }), CALLER);
  await catalog.createExternalTable(
    create(CreateExternalTableRequestSchema, {
      database: "db",
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Timestamp", type: "datetime" }, { name: "Host", type: "string" }, { name: "Owner", type: "string" }, { name: "Count", type: "long" }],
      connectionStrings: ["https://account.blob.core.windows.net/lake?sv=2024-01-01&sig=secret"],
    }),
    false,
    CALLER,
  );
});

afterEach(async () => {
  await store.close();
  await describer.close();
  await cursorModule.stop();
  await rm(dir, { recursive: true, force: true });
});

afterAll(() => closeSharedKqlEngine());

const exportRequest = (query: string, over: string[] = ["Events"], queryLanguage = "kql") =>
  create(CreateOrAlterContinuousExportRequestSchema, { database: "db", name: "E", externalTable: "Lake", query, queryLanguage, over, properties: { intervalBetweenRuns: HOUR } });

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = (await p.then(() => undefined, (e: unknown) => e)) as { code: string; message: string } | undefined;
  expect(err, "the call should have been refused").toBeDefined();
  return err!;
}

describe("a continuous export written in KQL", () => {
  it("shows the user's KQL and runs its SQL, fact tables bound by over and the others whole", async () => {
    const created = await catalog.createOrAlterContinuousExport(exportRequest(KQL));
    expect(created).toMatchObject({ query: KQL, queryLanguage: "kql", cursorScopedTables: ["Events"] });
    expect(await catalog.showContinuousExport("db", "E")).toMatchObject({ query: KQL, queryLanguage: "kql" });

    const [spec] = await catalog.exportSpecs("db", "E");
    expect(spec!.query).not.toBe(KQL);
    expect(spec!.factTables).toEqual(["Events"]);
    expect(spec!.dimensionTables).toEqual(["Hosts"]);
    expect(spec!.tables.map((t) => t.name).sort()).toEqual(["Events", "Hosts"]);
    // The SQL is what a run binds and executes: DuckDB takes it and gives the export's columns.
    const described = await describer.describe(spec!.query, spec!.tables);
    expect(described.tables.sort()).toEqual(["Events", "Hosts"]);
    expect(described.columns).toEqual([
      { name: "Timestamp", type: "datetime" },
      { name: "Host", type: "string" },
      { name: "Owner", type: "string" },
      { name: "Count", type: "long" },
    ]);
  });

  it("answers one export's spec from the listing while no definition changed, and as changed after a change", async () => {
    await catalog.createOrAlterContinuousExport(exportRequest(KQL));
    const all = await catalog.exportSpecs("", "");
    expect(await catalog.exportSpecs("db", "E")).toEqual(all);
    expect(await catalog.exportSpecs("db", "Other")).toEqual([]);
    await catalog.setExportDisabled("db", "E", true);
    expect((await catalog.exportSpecs("db", "E"))[0]!.isDisabled).toBe(true);
    await catalog.exportSpecs("", "");
    expect((await catalog.exportSpecs("db", "E"))[0]!.isDisabled).toBe(true);
    await catalog.setExportDisabled("db", "E", false);
    expect((await catalog.exportSpecs("db", "E"))[0]!.isDisabled).toBe(false);
  });

  it("is translated once, at create/alter: listing, disabling, enabling and reopening run the kept SQL", async () => {
    await catalog.createOrAlterContinuousExport(exportRequest(KQL));
    expect(translations).toEqual([KQL]);
    const sql = (await catalog.exportSpecs("db", "E"))[0]!.query;
    await catalog.exportSpecs("", "");
    await catalog.setExportDisabled("db", "E", true);
    await catalog.setExportDisabled("db", "E", false);
    expect((await catalog.exportSpecs("", ""))[0]!.query).toBe(sql);

    await store.close();
    store = await CatalogStore.open(dir);
    catalog = newCatalog();
    expect((await catalog.exportSpecs("db", "E"))[0]!.query).toBe(sql);
    expect(await catalog.showContinuousExport("db", "E")).toMatchObject({ query: KQL, queryLanguage: "kql" });
    expect(translations).toEqual([KQL]);

    // Altering translates the new text, and runs see the new SQL.
    const altered = `${KQL} | where Count > 1`;
    await catalog.createOrAlterContinuousExport(exportRequest(altered));
    expect(translations).toEqual([KQL, altered]);
    const newSql = (await catalog.exportSpecs("db", "E"))[0]!.query;
    expect(newSql).not.toBe(sql);
    expect(newSql).toContain("> CAST(1 AS BIGINT)");
  });

  it("reads every table as a fact table when over is not given, as SQL exports do", async () => {
    const created = await catalog.createOrAlterContinuousExport(exportRequest(KQL, []));
    expect(created.cursorScopedTables.sort()).toEqual(["Events", "Hosts"]);
    expect((await catalog.exportSpecs("db", "E"))[0]!.dimensionTables).toEqual([]);
  });

  it("keeps a SQL export as it was stored before KQL: its query is what runs", async () => {
    const sql = "SELECT e.Timestamp, e.Host, h.Owner, e.Count FROM Events e JOIN Hosts h ON e.Host = h.Host";
    const created = await catalog.createOrAlterContinuousExport(exportRequest(sql, ["Events"], ""));
    expect(created).toMatchObject({ query: sql, queryLanguage: "sql" });
    expect(translations).toEqual([]);
    // The definition, its dimensions and whether runs may split over nodes; no SQL beside, as before KQL.
    const body = JSON.parse((await store.get("continuous_export", "db", "E"))!) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["definition", "dimensions", "rowWise"]);
    expect((await catalog.exportSpecs("db", "E"))[0]).toMatchObject({ query: sql, rowWise: true });
    // A body written before row-wise was known: its runs are not split.
    await store.write((tx) => tx.put("continuous_export", "db", "E", JSON.stringify({ definition: body.definition, dimensions: body.dimensions })));
    expect((await catalog.exportSpecs("db", "E"))[0]).toMatchObject({ query: sql, rowWise: false });
  });

  it("marks an aggregating export as not row-wise: its runs are never split over nodes", async () => {
    await catalog.createOrAlterContinuousExport(exportRequest("SELECT max(Timestamp) AS Timestamp, Host, '' AS Owner, sum(Count) AS Count FROM Events GROUP BY Host", ["Events"], ""));
    expect((await catalog.exportSpecs("db", "E"))[0]!.rowWise).toBe(false);
  });

  it.each([
    ["a syntax error, with line and column", 'Events\n| where Level == "Error" |', ["Events"], /KQL query refused: KS\d+ at line 2, column \d+: /],
    ["an unknown column", "Events | project Timestamp, Host, Owner = Nope, Count", ["Events"], /KQL query refused: KS\d+ at line 1, column 43: .*Nope/],
    ["an unsupported operator", "Events | sample 3 | project Timestamp, Host, Owner = Level, Count", ["Events"], /KQL query refused: SPW-KQL-UNSUPPORTED at line 1, column 10: .*sample/],
    ["an output the external table cannot take (the parser's types)", "Events | project Timestamp, Host, Owner = Level, Count = tostring(Count)", ["Events"], /column 'Count' is string, which cannot be written as long/],
    ["an over table the query does not read", "Events | project Timestamp, Host, Owner = Level, Count", ["Hosts"], /over names table 'Hosts', which the query does not read/],
  ])("refuses %s and changes nothing", async (_, query, over, message) => {
    const err = await refusal(catalog.createOrAlterContinuousExport(exportRequest(query, over)));
    expect(err.code).toBe(ErrorCode.invalidArgument);
    expect(err.message).toMatch(message);
    expect(await catalog.listContinuousExports("db")).toEqual([]);
    expect(await store.get("continuous_export", "db", "E")).toBeUndefined();
  });

  it("leaves an export as it was when altering it with a query that is refused", async () => {
    await catalog.createOrAlterContinuousExport(exportRequest(KQL));
    const sql = (await catalog.exportSpecs("db", "E"))[0]!.query;
    const err = await refusal(catalog.createOrAlterContinuousExport(exportRequest("Events | project Nope")));
    expect(err.code).toBe(ErrorCode.invalidArgument);
    expect(await catalog.showContinuousExport("db", "E")).toMatchObject({ query: KQL, queryLanguage: "kql" });
    expect((await catalog.exportSpecs("db", "E"))[0]!.query).toBe(sql);
  });

  it("refuses a language other than sql and kql before reading the query", async () => {
    const err = await refusal(catalog.createOrAlterContinuousExport(exportRequest(KQL, ["Events"], "python")));
    expect(err.message).toBe("continuous export 'E': queryLanguage 'python' is not supported; use sql or kql");
    expect(translations).toEqual([]);
  });
});

describe("dropping a continuous export", () => {
  it("keeps the export, and lets its runs go on at once, when storage refuses to remove what failed attempts left", async () => {
    await catalog.createOrAlterContinuousExport(exportRequest(KQL));
    const [spec] = await catalog.exportSpecs("db", "E");
    await peers.cursor.journalPending({ exportId: spec!.id, runId: "crashed", paths: ["https://account.blob.core.windows.net/lake/left.parquet"] });
    // The writer of this suite refuses every call: here, the deletion of that file.
    expect((await refusal(catalog.dropContinuousExport("db", "E"))).message).toContain("unexpected writer call deleteArtifacts");
    expect(await catalog.showContinuousExport("db", "E")).toMatchObject({ name: "E" });
    // The drop's hold on the export went with it: a scheduler may run it now.
    const started = await peers.cursor.startRun({ exportId: spec!.id, name: "E", runId: "run-1", owner: "scheduler", leaseTtlMs: 30_000n });
    expect(started.started).toBe(true);
    expect((await peers.cursor.listPendingArtifacts({ exportId: spec!.id })).pending.map((p) => p.path)).toEqual(["https://account.blob.core.windows.net/lake/left.parquet"]);
  });

  describe("while a run holds it", () => {
    const files = ["https://account.blob.core.windows.net/lake/run-1_0.parquet", "https://account.blob.core.windows.net/lake/run-1_1.parquet"];
    const SWEEP_AFTER = 120_000;
    let deletions: Array<{ table: string; connectionStrings: string[]; paths: string[] }>;
    let storageRefuses: string | undefined;

    /** An export whose run, on a node that then died, holds the lease and journaled its files. */
    async function exportWithRunInFlight() {
      await catalog.createOrAlterContinuousExport(exportRequest(KQL));
      const [spec] = await catalog.exportSpecs("db", "E");
      await peers.cursor.startRun({ exportId: spec!.id, name: "E", runId: "run-1", owner: "node-that-died", leaseTtlMs: 30_000n });
      await peers.cursor.journalPending({ exportId: spec!.id, runId: "run-1", paths: files, owner: "node-that-died" });
      await peers.cursor.journalPending({ exportId: spec!.id, runId: "run-1", paths: [deltaHoldEntry(spec!.id, 1n)], owner: "node-that-died" });
      return spec!.id;
    }

    beforeEach(() => {
      deletions = [];
      storageRefuses = undefined;
      peers.writer = {
        deleteArtifacts: async (req: { externalTable?: { name: string; connectionStrings: string[] }; paths: string[] }) => {
          if (storageRefuses) throw new Error(storageRefuses);
          deletions.push({ table: req.externalTable!.name, connectionStrings: req.externalTable!.connectionStrings, paths: req.paths });
          return {};
        },
      } as unknown as CatalogPeers["writer"];
      catalog = newCatalog();
    });

    it("leaves the run's files to it, and removes what its journal still lists once its node is surely gone", async () => {
      const exportId = await exportWithRunInFlight();
      await catalog.dropContinuousExport("db", "E");
      expect(await catalog.listContinuousExports("db")).toEqual([]);
      expect(deletions).toEqual([]);

      // Too soon after the drop: the run may be alive, and remove its files itself when its commit is refused.
      expect(await sweepLeftovers(store, peers, Date.now(), SWEEP_AFTER)).toEqual({ removed: 0, finished: 0, failures: [] });
      expect(deletions).toEqual([]);

      // A record that cannot be read keeps no other from being swept.
      await store.write((tx) => tx.put("export_leftovers", "db", "00-unreadable", "{not json"));
      const swept = await sweepLeftovers(store, peers, Date.now() + SWEEP_AFTER, SWEEP_AFTER);
      // Two files: a Delta run's hold journaled beside them names none.
      expect(swept).toEqual({ removed: 2, finished: 1, failures: [expect.stringContaining("could not be read")] });
      await store.write((tx) => tx.delete("export_leftovers", "db", "00-unreadable"));
      // With the external table as it was at the drop, secrets included (the writer needs them).
      expect(deletions).toEqual([{ table: "Lake", connectionStrings: ["https://account.blob.core.windows.net/lake?sv=2024-01-01&sig=secret"], paths: expect.arrayContaining(files) }]);
      expect((await peers.cursor.listPendingArtifacts({ exportId })).pending).toEqual([]);
      // Done with: the next sweep has nothing to do.
      expect(await sweepLeftovers(store, peers, Date.now() + 2 * SWEEP_AFTER, SWEEP_AFTER)).toEqual({ removed: 0, finished: 0, failures: [] });
      expect(deletions).toHaveLength(1);
    });

    it("keeps trying while storage refuses, saying why without the table's secrets, and gives up after 7 days", async () => {
      await exportWithRunInFlight();
      await catalog.dropContinuousExport("db", "E");
      storageRefuses = "403 for https://account.blob.core.windows.net/lake?sv=2024-01-01&sig=secret";
      const refused = await sweepLeftovers(store, peers, Date.now() + SWEEP_AFTER, SWEEP_AFTER);
      expect(refused).toMatchObject({ removed: 0, finished: 0, failures: [expect.stringContaining("dropped continuous export 'E' of database 'db' could not be removed")] });
      expect(refused.failures[0]).toContain("trying again later");
      expect(refused.failures[0]).not.toContain("sig=secret");
      const givenUp = await sweepLeftovers(store, peers, Date.now() + 8 * 86_400_000, SWEEP_AFTER);
      expect(givenUp).toMatchObject({ removed: 0, finished: 1, failures: [expect.stringContaining("given up on after 7 days")] });
      expect(await store.list("export_leftovers")).toEqual([]);
    });

    it("records no leftovers when no run holds it: the drop removed what failed attempts left itself", async () => {
      await catalog.createOrAlterContinuousExport(exportRequest(KQL));
      const [spec] = await catalog.exportSpecs("db", "E");
      await peers.cursor.journalPending({ exportId: spec!.id, runId: "crashed", paths: files });
      await catalog.dropContinuousExport("db", "E");
      expect(deletions).toEqual([{ table: "Lake", connectionStrings: expect.any(Array), paths: files }]);
      expect(await store.list("export_leftovers")).toEqual([]);
    });
  });
});
