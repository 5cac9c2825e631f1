import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readArtifacts } from "../support/artifact-reader.js";
import { AZURITE_KEY, useAzurite, type Azurite } from "../support/azurite.js";
import { artifactPaths, blobNames, csv, newContainer } from "../support/fixtures.js";
import { postgresDatabaseForTest } from "../support/postgres.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

/**
 * The classic source of duplicates in sink connectors on rebalance: a node paused in the
 * middle of a run until its lease has passed to another node, then resumed. Its upload is
 * held by a proxy in front of the lake at the moment it is paused, and lands after the other
 * node has committed the same records.
 */
describe("fencing: a node paused mid-run past its lease", () => {
  let azurite: Azurite;
  let metadata: { url: string; release(): Promise<void> };
  let proxy: HoldingProxy;
  const nodes: SpillwayUnderTest[] = [];

  beforeAll(async () => {
    azurite = await useAzurite();
    metadata = await postgresDatabaseForTest();
    proxy = await holdingProxy(new URL(azurite.serviceUrl).origin);
  });

  afterAll(async () => {
    for (const n of nodes) n.signal("SIGCONT");
    await Promise.all(nodes.map((n) => n.stop()));
    await proxy?.close();
    await metadata?.release();
    await azurite?.stop();
  });

  it("commits nothing and leaves no file behind when it resumes", async () => {
    const extents = await newContainer(azurite, "extents");
    const lake = await newContainer(azurite, "lake");
    const env = { SPILLWAY_METADATA_URL: metadata.url, SPILLWAY_EXTENT_STORE: azurite.connectionString(`${extents}/cluster`), SPILLWAY_RUN_LEASE: "2s" };
    const [a, b] = [await startSpillwayProcesses("all", env), await startSpillwayProcesses("all", env)];
    nodes.push(a, b);

    await a.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await a.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }],
      connectionStrings: [`${proxy.origin}/devstoreaccount1/${lake}/events;${AZURITE_KEY}`],
    });
    // An hour between runs: only the runs the test asks for happen.
    await a.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", over: ["Events"], properties: { intervalBetweenRuns: { seconds: 3600n } } });
    await a.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 10 }, (_, i) => [i + 1])) });

    const held = proxy.holdNextPut(`/devstoreaccount1/${lake}/`);
    const pausedRun = a.catalog.runContinuousExportNow({ name: "Out" });
    await held.arrived;
    a.signal("SIGSTOP");
    // Past the lease (2 s): b takes the export over and commits the same records.
    await new Promise((r) => setTimeout(r, 3500));
    const takeover = await b.catalog.runContinuousExportNow({ name: "Out" });
    expect(takeover.result, takeover.details).toBe("Completed");
    // a's upload lands now, after b's commit, while a is still paused.
    await held.forward();
    expect((await blobNames(azurite, lake)).length).toBe(takeover.artifacts.length + 1);
    a.signal("SIGCONT");

    const fenced = await pausedRun;
    expect(fenced.result).toBe("Failed");
    expect(fenced.details).toMatch(/lease .* was lost|checkpoint moved/);
    // Nothing of a's run stays: the lake holds b's artifacts only, each record once.
    const committed = await artifactPaths(b, "Out");
    expect(committed).toEqual(takeover.artifacts.map((x) => x.path));
    expect((await blobNames(azurite, lake)).map((n) => `${proxy.origin}/devstoreaccount1/${lake}/${n}`).sort()).toEqual([...committed].sort());
    const rows = await readArtifacts(azurite.client, committed.map((p) => p.replace(proxy.origin, new URL(azurite.serviceUrl).origin)), "parquet");
    expect(rows.map((r) => Number(r.Id)).sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });
});

describe("the owner of a distributed run killed mid-way", () => {
  let azurite: Azurite;
  let metadata: { url: string; release(): Promise<void> };
  let proxy: HoldingProxy;
  const nodes: SpillwayUnderTest[] = [];

  beforeAll(async () => {
    azurite = await useAzurite();
    metadata = await postgresDatabaseForTest();
    proxy = await holdingProxy(new URL(azurite.serviceUrl).origin);
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await proxy?.close();
    await metadata?.release();
    await azurite?.stop();
  });

  it("leaves its parts' files to the next owner, which deletes them and exports every record once", async () => {
    const extents = await newContainer(azurite, "extents");
    const lake = await newContainer(azurite, "lake");
    const env = {
      SPILLWAY_METADATA_URL: metadata.url,
      SPILLWAY_EXTENT_STORE: azurite.connectionString(`${extents}/cluster`),
      SPILLWAY_RUN_LEASE: "2s",
      SPILLWAY_DISTRIBUTED_MIN_SIZE: "1",
    };
    const [a, b] = [await startSpillwayProcesses("all", env), await startSpillwayProcesses("all", env)];
    nodes.push(a, b);
    await a.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await a.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Id", type: "long" }],
      connectionStrings: [`${proxy.origin}/devstoreaccount1/${lake}/events;${AZURITE_KEY}`],
    });
    await a.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", over: ["Events"], properties: { intervalBetweenRuns: { seconds: 3600n } } });
    // Two extents, so the run splits in two parts, one per node.
    await a.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 10 }, (_, i) => [i + 1])) });
    await b.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 10 }, (_, i) => [i + 11])) });
    // Both nodes have said they are alive (heartbeats every 2 s).
    await new Promise((r) => setTimeout(r, 2500));

    const held = proxy.holdNextPut(`/devstoreaccount1/${lake}/`);
    const doomed = a.catalog.runContinuousExportNow({ name: "Out" }).catch((err: Error) => err);
    await held.arrived;
    await a.kill();
    // The upload a part had under way when its owner died lands now; the run never commits.
    await held.forward();
    expect(await doomed).toBeInstanceOf(Error);
    // What landed is a part's file: the dead owner's run was split over both nodes.
    expect((await blobNames(azurite, lake)).filter((n) => /_p[01]_\d+\.parquet$/.test(n))).toHaveLength(1);

    // b takes over once a's lease has expired and a has left the live nodes (6 s without a heartbeat).
    let takeover: Awaited<ReturnType<typeof b.catalog.runContinuousExportNow>> | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      takeover = await b.catalog.runContinuousExportNow({ name: "Out" }).catch(() => undefined);
      if (takeover?.result === "Completed") break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(takeover?.result, takeover?.details).toBe("Completed");
    const committed = await artifactPaths(b, "Out");
    expect((await blobNames(azurite, lake)).map((n) => `${proxy.origin}/devstoreaccount1/${lake}/${n}`).sort()).toEqual([...committed].sort());
    const rows = await readArtifacts(azurite.client, committed.map((p) => p.replace(proxy.origin, new URL(azurite.serviceUrl).origin)), "parquet");
    expect(rows.map((r) => Number(r.Id)).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
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
