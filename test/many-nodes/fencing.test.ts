import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStorageTarget, parseConnectionString } from "@spillway/storage";
import { readArtifacts } from "../support/artifact-reader.js";
import { readDeltaTable } from "../support/delta-reader.js";
import { AZURITE_KEY, useAzurite, type Azurite } from "../support/azurite.js";
import { artifactPaths, blobNames, csv, newContainer } from "../support/fixtures.js";
import { postgresDatabaseForTest } from "../support/postgres.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

/** Two nodes on one PostgreSQL and an extent store, an export to a lake behind a proxy that can hold an upload. */
/**
 * Azurite, a PostgreSQL database and a proxy in front of Azurite for the suite; the nodes it
 * starts (pushed to `nodes`) are continued and stopped after it.
 */
function besideAProxy() {
  const ctx = {} as { azurite: Azurite; proxy: HoldingProxy; nodes: SpillwayUnderTest[]; metadataUrl: string };
  let metadata: { url: string; release(): Promise<void> } | undefined;
  beforeAll(async () => {
    ctx.azurite = await useAzurite();
    metadata = await postgresDatabaseForTest();
    ctx.metadataUrl = metadata.url;
    ctx.proxy = await holdingProxy(new URL(ctx.azurite.serviceUrl).origin);
    ctx.nodes = [];
  });
  afterAll(async () => {
    for (const n of ctx.nodes ?? []) n.signal("SIGCONT");
    await Promise.all((ctx.nodes ?? []).map((n) => n.stop()));
    await ctx.proxy?.close();
    await metadata?.release();
    await ctx.azurite?.stop();
  });
  return ctx;
}

function twoNodes() {
  const ctx = besideAProxy() as ReturnType<typeof besideAProxy> & { lake: string };
  return {
    ctx,
    /** Starts the nodes (a 2 s run lease) and defines table Events and export Out to the lake; an hour between runs: only the runs the test asks for happen. */
    async start(env: Record<string, string> = {}) {
      const extents = await newContainer(ctx.azurite, "extents");
      ctx.lake = await newContainer(ctx.azurite, "lake");
      const all = { SPILLWAY_METADATA_URL: ctx.metadataUrl, SPILLWAY_EXTENT_STORE: ctx.azurite.connectionString(`${extents}/cluster`), SPILLWAY_RUN_LEASE: "2s", ...env };
      const [a, b] = [await startSpillwayProcesses("all", all), await startSpillwayProcesses("all", all)];
      ctx.nodes.push(a, b);
      await a.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
      await a.catalog.createExternalTable({
        name: "Lake",
        kind: "blob",
        dataFormat: "parquet",
        columns: [{ name: "Id", type: "long" }],
        connectionStrings: [`${ctx.proxy.origin}/devstoreaccount1/${ctx.lake}/events;${AZURITE_KEY}`],
      });
      await a.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", over: ["Events"], properties: { intervalBetweenRuns: { seconds: 3600n } } });
      return [a, b] as const;
    },
    ingest: (node: SpillwayUnderTest, from: number, count: number) => node.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: count }, (_, i) => [from + i])) }),
    /** `node` runs Out at once; resolves when its first upload to the lake is held, with the run's answer to come (an Error if it fails). */
    async runHeldAtUpload(node: SpillwayUnderTest) {
      const held = ctx.proxy.holdNextPut(`/devstoreaccount1/${ctx.lake}/`);
      const run = node.catalog.runContinuousExportNow({ name: "Out" }).catch((err: Error) => err);
      await held.arrived;
      return { run, forward: held.forward };
    },
    lakeFiles: () => blobNames(ctx.azurite, ctx.lake),
    /** Nothing but `committer`'s committed artifacts is in the lake, and they hold ids 1..count once each. */
    async expectExactlyOnce(committer: SpillwayUnderTest, count: number) {
      const committed = await artifactPaths(committer, "Out");
      expect((await blobNames(ctx.azurite, ctx.lake)).map((n) => `${ctx.proxy.origin}/devstoreaccount1/${ctx.lake}/${n}`).sort()).toEqual([...committed].sort());
      const rows = await readArtifacts(ctx.azurite.client, committed.map((p) => p.replace(ctx.proxy.origin, new URL(ctx.azurite.serviceUrl).origin)), "parquet");
      expect(rows.map((r) => Number(r.Id)).sort((x, y) => x - y)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      return committed;
    },
  };
}

/**
 * The classic source of duplicates in sink connectors on rebalance: a node paused in the
 * middle of a run until its lease has passed to another node, then resumed. Its upload is
 * held by a proxy in front of the lake at the moment it is paused, and lands after the other
 * node has committed the same records.
 */
describe("fencing: a node paused mid-run past its lease", () => {
  const cluster = twoNodes();

  it("commits nothing and leaves no file behind when it resumes", async () => {
    const [a, b] = await cluster.start();
    await cluster.ingest(a, 1, 10);

    const held = await cluster.runHeldAtUpload(a);
    a.signal("SIGSTOP");
    // Past the lease (2 s): b takes the export over and commits the same records.
    await new Promise((r) => setTimeout(r, 3500));
    const takeover = await b.catalog.runContinuousExportNow({ name: "Out" });
    expect(takeover.result, takeover.details).toBe("Completed");
    // a's upload lands now, after b's commit, while a is still paused.
    await held.forward();
    expect((await cluster.lakeFiles()).length).toBe(takeover.artifacts.length + 1);
    a.signal("SIGCONT");

    const fenced = await held.run;
    if (fenced instanceof Error) throw fenced;
    expect(fenced.result).toBe("Failed");
    expect(fenced.details).toMatch(/lease .* was lost|checkpoint moved/);
    // Nothing of a's run stays: the lake holds b's artifacts only, each record once.
    expect(await cluster.expectExactlyOnce(b, 10)).toEqual(takeover.artifacts.map((x) => x.path));
  });
});

describe("the owner of a distributed run killed mid-way", () => {
  const cluster = twoNodes();

  it("leaves its parts' files to the next owner, which deletes them and exports every record once", async () => {
    const [a, b] = await cluster.start({ SPILLWAY_DISTRIBUTED_MIN_SIZE: "1" });
    // Two extents, so the run splits in two parts, one per node.
    await cluster.ingest(a, 1, 10);
    await cluster.ingest(b, 11, 10);
    // Both nodes have said they are alive (heartbeats every 2 s).
    await new Promise((r) => setTimeout(r, 2500));

    const held = await cluster.runHeldAtUpload(a);
    await a.kill();
    // The upload a part had under way when its owner died lands now; the run never commits.
    await held.forward();
    expect(await held.run).toBeInstanceOf(Error);
    // What landed are parts' files (the held one, and the other part's if it was quicker than the kill): the run was split.
    const landed = await cluster.lakeFiles();
    expect(landed.length).toBeGreaterThan(0);
    for (const name of landed) expect(name).toMatch(/_p[01]_\d+\.parquet$/);

    // b takes over once a's lease has expired and a has left the live nodes (6 s without a heartbeat).
    let takeover: Awaited<ReturnType<typeof b.catalog.runContinuousExportNow>> | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      takeover = await b.catalog.runContinuousExportNow({ name: "Out" }).catch(() => undefined);
      if (takeover?.result === "Completed") break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(takeover?.result, takeover?.details).toBe("Completed");
    await cluster.expectExactlyOnce(b, 20);
  });
});

/**
 * A node that dies mid-run while its export is not due again for an hour: no run takes the
 * export, so nothing supersedes the dead node's run. The other node's sweep records it failed
 * once its lease has stood expired for three leases (6 s), rather than leave it Running until
 * a scheduler starts; then a run asked for exports every record once.
 */
describe("a node killed mid-run, its export not due again", () => {
  const cluster = twoNodes();

  it("has its run recorded failed by the other node's sweep, without a run of the export", async () => {
    const [a, b] = await cluster.start();
    await cluster.ingest(a, 1, 10);
    const held = await cluster.runHeldAtUpload(a);
    await a.kill();
    await held.forward();
    expect(await held.run).toBeInstanceOf(Error);
    const running = async () => (await b.catalog.showRunHistory({ name: "Out" })).runs;
    expect((await running()).map((r) => r.result)).toEqual(["Running"]);

    // Lease 2 s, swept once expired for 6 s, a sweep every 2 s: well within 30 s.
    let runs = await running();
    for (const deadline = Date.now() + 30_000; runs[0]?.result === "Running" && Date.now() < deadline; runs = await running()) await new Promise((r) => setTimeout(r, 500));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ result: "Failed", details: expect.stringMatching(/stopped renewing its lease more than 6 s ago/) });

    const next = await b.catalog.runContinuousExportNow({ name: "Out" });
    expect(next.result, next.details).toBe("Completed");
    await cluster.expectExactlyOnce(b, 10);
  });
});

/**
 * A node killed mid-upload, its export dropped while the node's lease still stood: the drop
 * cannot tell a dead run from a live one, so it leaves the run's files to it, and records
 * them as the dropped export's leftovers. No run of the export will ever come to remove
 * them: the other node's catalog sweeps them four leases after the drop.
 */
describe("a node killed mid-upload, its export dropped before its lease expired", () => {
  const cluster = twoNodes();

  it("has the file it uploaded removed by the other node's sweep of the drop's leftovers", async () => {
    // A 4 s lease, so the drop surely comes while it stands: swept 16 s after the drop, looked for every 4 s.
    const [a, b] = await cluster.start({ SPILLWAY_RUN_LEASE: "4s" });
    await cluster.ingest(a, 1, 10);
    const held = await cluster.runHeldAtUpload(a);
    await a.kill();
    await held.forward();
    expect(await held.run).toBeInstanceOf(Error);
    expect(await cluster.lakeFiles()).toHaveLength(1);

    await b.catalog.dropContinuousExport({ name: "Out" });
    // Left to the run: had the drop taken the export, it would have removed the file itself.
    expect(await cluster.lakeFiles()).toHaveLength(1);
    await expect.poll(() => cluster.lakeFiles(), { timeout: 40_000, interval: 1000 }).toEqual([]);
    // The sweep says so once it is done with the record (after the file went).
    await expect.poll(() => b.output(), { timeout: 10_000 }).toMatch(/catalog: removed 1 files that runs of dropped continuous exports had left/);
  });
});

/**
 * A backfill to a Delta table whose node is paused between its upload and its log commit,
 * until the backfill has passed to another node: the other node must not remove files the
 * paused one can still make the table's. Here the paused node's log commit lands once the
 * other node has removed its files, before that node's own commit of the batch (its upload
 * held): without a fence of the paused claim's version first, the table's log would point at
 * a file that is gone.
 */
describe("fencing: a backfill to a Delta table, its node paused between upload and log commit", () => {
  const ctx = besideAProxy();

  it("leaves the table's log pointing at no removed file, and every record in it once", async () => {
    const extents = await newContainer(ctx.azurite, "extents");
    const lake = await newContainer(ctx.azurite, "lake");
    const env = { SPILLWAY_METADATA_URL: ctx.metadataUrl, SPILLWAY_EXTENT_STORE: ctx.azurite.connectionString(`${extents}/cluster`), SPILLWAY_RUN_LEASE: "2s" };
    const a = await startSpillwayProcesses("all", env);
    ctx.nodes.push(a);
    await a.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await a.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 10 }, (_, i) => [i + 1])) });
    await a.catalog.createExternalTable({
      name: "Lake",
      kind: "delta",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }],
      connectionStrings: [`${ctx.proxy.origin}/devstoreaccount1/${lake}/events;${AZURITE_KEY}`],
    });
    // Made after the records: they are the backfill's.
    await a.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });

    const logCommit = ctx.proxy.holdNextPut(`/devstoreaccount1/${lake}/events/_delta_log/`);
    await a.catalog.backfillContinuousExport({ name: "Out" });
    await logCommit.arrived;
    a.signal("SIGSTOP");
    // Past a's lease (2 s), b claims the backfill; its upload of the batch is held in turn.
    const upload = ctx.proxy.holdNextPut(`/devstoreaccount1/${lake}/events/part-`);
    const b = await startSpillwayProcesses("all", env);
    ctx.nodes.push(b);
    await upload.arrived;
    // a's log commit lands now, after b removed a's file and before b's own commit.
    await logCommit.forward();
    a.signal("SIGCONT");
    await upload.forward();

    const shown = async () => (await b.catalog.showContinuousExport({ name: "Out" })).export!.backfill!;
    await expect.poll(async () => (await shown()).state, { timeout: 60_000, interval: 500 }).toBe("Completed");
    const table = await readDeltaTable(openStorageTarget(parseConnectionString(ctx.azurite.connectionString(`${lake}/events`))));
    expect(table.rows.map((r) => Number(r.Id)).sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const dataFiles = (await blobNames(ctx.azurite, lake)).filter((n) => !n.includes("_delta_log/"));
    expect(dataFiles.sort()).toEqual(table.files.map((f) => `events/${decodeURIComponent(f.path)}`).sort());
  }, 180_000);
});

interface HoldingProxy {
  origin: string;
  /** Holds the next PUT whose path starts with `pathPrefix` until `forward` is called. */
  holdNextPut(pathPrefix: string): { arrived: Promise<void>; forward(): Promise<void> };
  close(): Promise<void>;
}

/** An HTTP proxy to Azurite that passes everything through, except one PUT it is told to hold. */
async function holdingProxy(target: string): Promise<HoldingProxy> {
  let hold: { prefix: string; arrive: () => void; release: Promise<void>; forwarded: (done: Promise<void>) => void } | undefined;
  const pass = (req: IncomingMessage, res: ServerResponse, body: Buffer) =>
    new Promise<void>((resolve) => {
      const upstream = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on("end", () => resolve());
      });
      upstream.on("error", () => {
        res.destroy();
        resolve();
      });
      upstream.end(body);
    });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const h = hold;
      if (h && req.method === "PUT" && req.url?.startsWith(h.prefix)) {
        hold = undefined;
        h.arrive();
        void h.release.then(() => h.forwarded(pass(req, res, body)));
        return;
      }
      void pass(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    origin: `http://127.0.0.1:${port}`,
    holdNextPut(prefix) {
      let arrive!: () => void;
      let release!: () => void;
      let forwarded!: (done: Promise<void>) => void;
      const arrived = new Promise<void>((r) => (arrive = r));
      const done = new Promise<Promise<void>>((r) => (forwarded = r));
      hold = { prefix, arrive, release: new Promise<void>((r) => (release = r)), forwarded };
      return {
        arrived,
        async forward() {
          release();
          await (await done);
        },
      };
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
