import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readArtifacts } from "../support/artifact-reader.js";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { artifactPaths, blobNames, csv, newContainer } from "../support/fixtures.js";
import { postgresDatabaseForTest } from "../support/postgres.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

/**
 * Identical nodes sharing PostgreSQL (catalog and cursor stores) and an extent store in
 * Azurite, each with its own port and data dir (DESIGN "Scale-out"): any node serves any
 * call and reads what the others wrote; each run has one owner; a node can die or join.
 */
describe("many nodes on PostgreSQL and a shared extent store", () => {
  let azurite: Azurite;
  let metadata: { url: string; release(): Promise<void> };
  let extentContainer: string;
  const nodes: SpillwayUnderTest[] = [];

  const startNode = async () => {
    const node = await startSpillwayProcesses("all", {
      SPILLWAY_METADATA_URL: metadata.url,
      SPILLWAY_EXTENT_STORE: azurite.connectionString(`${extentContainer}/cluster`),
      SPILLWAY_SCHEDULER_TICK: "200ms",
      // Every run with two extents or more is split over the live nodes.
      SPILLWAY_DISTRIBUTED_MIN_SIZE: "1",
    });
    nodes.push(node);
    return node;
  };

  beforeAll(async () => {
    azurite = await useAzurite();
    metadata = await postgresDatabaseForTest();
    extentContainer = await newContainer(azurite, "extents");
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await metadata?.release();
    await azurite?.stop();
  });

  it("shares definitions, extents and runs: every record exported exactly once through a node's death and another's arrival", async () => {
    const [a, b, c] = [await startNode(), await startNode(), await startNode()];
    const lake = await newContainer(azurite, "lake");

    // Definitions made on one node are there on every other at once.
    await a.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Node", type: "string" }] });
    await b.catalog.createTable({ name: "Keys", columns: [{ name: "Node", type: "string" }, { name: "Label", type: "string" }] });
    expect((await c.catalog.listTables({})).tables.map((t) => t.name).sort()).toEqual(["Events", "Keys"]);
    await c.query.ingest({ table: "Keys", format: "csv", payload: csv(["a", "b", "c", "d"].map((n) => [n, `node ${n}`])) });
    await b.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }, { name: "Node", type: "string" }, { name: "Label", type: "string" }],
      connectionStrings: [azurite.connectionString(`${lake}/events`)],
    });
    await a.catalog.createOrAlterContinuousExport({
      name: "EventsToLake",
      externalTable: "Lake",
      query: "SELECT e.Id, e.Node, k.Label FROM Events e JOIN Keys k ON e.Node = k.Node",
      over: ["Events"],
      properties: { intervalBetweenRuns: { seconds: 1n } },
    });

    let id = 0;
    const ingestOn = async (node: SpillwayUnderTest, name: string, count: number) => {
      const rows = Array.from({ length: count }, () => [++id, name] as [number, string]);
      await node.query.ingest({ table: "Events", format: "csv", payload: csv(rows) });
    };
    // Each node ingests; each reads every node's extents (through its own cache).
    for (const [node, name] of [[a, "a"], [b, "b"], [c, "c"]] as const) await ingestOn(node, name, 10);
    for (const node of [a, b, c]) {
      const counts = await queryRows(node, "SELECT Node, count(*) AS n FROM Events GROUP BY Node ORDER BY Node");
      expect(counts).toEqual([["a", "10"], ["b", "10"], ["c", "10"]]);
    }

    // A run asked of one node commits once; the scheduled runs of all three share the export by its lease.
    const now = await b.catalog.runContinuousExportNow({ name: "EventsToLake" });
    expect(now.result, now.details).toBe("Completed");
    // The run read three extents (one ingested on each node) and was split three ways: each node exported a part.
    expect(now.artifacts.map((x) => /_p(\d+)_\d+\.parquet$/.exec(x.path)?.[1]).sort()).toEqual(["0", "1", "2"]);

    // Node a dies (kill -9) while the others ingest and export.
    await a.kill();
    await ingestOn(b, "b", 15);
    await ingestOn(c, "c", 15);
    // A node joins: it serves at once and takes its share.
    const d = await startNode();
    await ingestOn(d, "d", 20);
    expect(await queryRows(d, "SELECT count(*) FROM Events")).toEqual([[String(id)]]);
    // d read them from the shared store: every ingestion (one of Keys, six of Events) is an extent there.
    const extents = (await blobNames(azurite, extentContainer)).filter((n) => /^cluster\/extents\/default\/(Events|Keys)\/.+\.parquet$/.test(n));
    expect(extents.length).toBe(7);

    // Every record reaches the lake once, whichever nodes ran the export.
    const expected = Array.from({ length: id }, (_, i) => String(i + 1));
    await waitUntil(async () => (await exportedIds(c, azurite)).length >= id, 60_000);
    const exported = await exportedIds(d, azurite);
    expect(exported).toEqual(expected);
    const shown = await d.catalog.showContinuousExport({ name: "EventsToLake" });
    expect(shown.export!.lastRunResult).toBe("Completed");
    const failures = (await c.catalog.showFailures({ name: "EventsToLake" })).failures;
    // The only failures allowed are runs cut short by a's death, failed so the next run covers
    // them: a's own, and split runs with a part on a before it left the live nodes.
    for (const f of failures) expect(f.details).toMatch(/stopped before the run committed|lease|was lost|being run by another|ECONNREFUSED/);
  });
});

async function queryRows(node: SpillwayUnderTest, sql: string): Promise<string[][]> {
  const rows: string[][] = [];
  for await (const part of node.query.query({ query: sql, queryLanguage: "sql" })) for (const r of part.rows) rows.push(r.values.map((v) => String(v.kind.value)));
  return rows;
}

async function exportedIds(node: SpillwayUnderTest, azurite: Azurite): Promise<string[]> {
  const rows = await readArtifacts(azurite.client, await artifactPaths(node, "EventsToLake"), "parquet");
  for (const r of rows) expect(r.Label).toBe(`node ${r.Node}`);
  return rows.map((r) => String(r.Id)).sort((x, y) => Number(x) - Number(y));
}

async function waitUntil(done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not done in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
