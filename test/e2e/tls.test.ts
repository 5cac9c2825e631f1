import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials, Metadata, status, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema } from "@spillway/proto";
import { grpcServiceDefinition } from "@spillway/rpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csv } from "../support/fixtures.js";
import { waitFor } from "../support/free-port.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";
import { issueCertificate, makeTestCa, type TestCa } from "../support/test-ca.js";

// Clients dial 127.0.0.1; `localhost` is there for people who point a client at it by name.
const SERVER_NAMES = ["127.0.0.1", "localhost"];
/** Long enough for a loaded machine to finish a handshake, short enough that a hang fails as DEADLINE_EXCEEDED. */
const PROBE_DEADLINE_MS = 10_000;

const check = grpcServiceDefinition(Health).check!;

/**
 * A grpc.health.v1 Check over a fresh channel with `creds`, bounded by a deadline (the
 * typed clients take none), so a connection that hangs fails as DEADLINE_EXCEEDED rather
 * than stalling the test. Health is open to anyone: the answer depends on the transport alone.
 */
function probe(address: string, creds: ChannelCredentials): Promise<{ code: number; details: string }> {
  const client = new Client(address, creds);
  return new Promise<{ code: number; details: string }>((resolve) => {
    client.makeUnaryRequest(check.path, check.requestSerialize, check.responseDeserialize, create(HealthCheckRequestSchema, {}), new Metadata(), { deadline: Date.now() + PROBE_DEADLINE_MS }, (err: ServiceError | null) =>
      resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: "" }),
    );
  }).finally(() => client.close());
}

/**
 * Each process's `listening on` line: the service(s) it hosts, its address and whether it
 * said TLS. Waited for: a process answers health checks a moment before it logs the line.
 */
async function listeningLines(sw: SpillwayUnderTest, processes: number): Promise<Array<{ services: string; address: string; tls: boolean }>> {
  return waitFor(`${processes} listening lines`, async () => {
    const lines = [...sw.output().matchAll(/^spillway: (.+) listening on (\S+)( \(TLS\))?,/gm)];
    return lines.length >= processes ? lines.map((m) => ({ services: m[1]!, address: m[2]!, tls: m[3] !== undefined })) : undefined;
  });
}

describe("TLS between clients and Spillway, and between its services", () => {
  let pki: string;
  let ca: TestCa;
  /** Signs nothing Spillway trusts. */
  let otherCa: TestCa;
  beforeAll(() => {
    pki = mkdtempSync(join(tmpdir(), "spillway-tls-pki-"));
    ca = makeTestCa(pki);
    otherCa = makeTestCa(pki, "Unrelated CA");
  });
  afterAll(() => rmSync(pki, { recursive: true, force: true }));

  describe("one process (all) serving TLS", () => {
    let sw: SpillwayUnderTest;
    beforeAll(async () => {
      const server = issueCertificate(ca, "spillway", { serverNames: SERVER_NAMES });
      sw = await startSpillwayProcesses("all", { SPILLWAY_TLS_CERT: server.certPath, SPILLWAY_TLS_KEY: server.keyPath }, undefined, { tls: { ca: ca.cert } });
    });
    afterAll(async () => {
      await sw?.stop();
    });

    it("serves a client that trusts its CA, and says it serves TLS", async () => {
      await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
      await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1, "a"], [2, "b"]]) });
      const rows = [];
      for await (const batch of sw.query.query({ query: "SELECT Id, Key FROM Events ORDER BY Id" })) rows.push(...batch.rows);
      expect(rows.map((r) => r.values.map((v) => v.kind.value))).toEqual([["1", "a"], ["2", "b"]]);
      expect(await listeningLines(sw, 1)).toEqual([{ services: "cursor, writer, catalog, query, scheduler, kusto, console", address: sw.catalogAddress, tls: true }]);
    });

    it("serves the console over HTTPS with the same certificate", async () => {
      const url = /console on (https:\/\/127\.0\.0\.1:\d+)\//.exec(sw.output())![1]!;
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        get(`${url}/api/overview`, { ca: ca.cert }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode!, body }));
        }).on("error", reject);
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ database: "default" });
    });

    it("is refused by a client that trusts another CA, without hanging", async () => {
      // The same probe succeeds when it trusts the right CA: the refusal is the certificate's doing.
      expect(await probe(sw.catalogAddress, credentials.createSsl(ca.cert))).toEqual({ code: status.OK, details: "" });
      const refused = await probe(sw.catalogAddress, credentials.createSsl(otherCa.cert));
      expect(refused).toEqual({ code: status.UNAVAILABLE, details: expect.stringMatching(/certificate/i) });
    });

    it("fails a plaintext client cleanly, within its deadline", async () => {
      const refused = await probe(sw.catalogAddress, credentials.createInsecure());
      expect(refused.code).toBe(status.UNAVAILABLE);
      // The stray bytes cost the server nothing: it still serves TLS clients.
      expect(await probe(sw.catalogAddress, credentials.createSsl(ca.cert))).toEqual({ code: status.OK, details: "" });
    });
  });

  describe("one process per module (split) over mutual TLS", () => {
    let sw: SpillwayUnderTest;
    // Outside the data dir, where file:// targets may not point (SPEC §7).
    let lake: string;
    beforeAll(async () => {
      lake = mkdtempSync(join(tmpdir(), "spillway-tls-lake-"));
      // One certificate per process would be the same certificate four times: they share an environment.
      const service = issueCertificate(ca, "spillway-service", { serverNames: SERVER_NAMES, clientAuth: true });
      const client = issueCertificate(ca, "test-client", { clientAuth: true });
      sw = await startSpillwayProcesses(
        "split",
        { SPILLWAY_TLS_CERT: service.certPath, SPILLWAY_TLS_KEY: service.keyPath, SPILLWAY_TLS_CLIENT_CA: ca.certPath },
        undefined,
        { tls: { ca: ca.cert, cert: client.cert, key: client.key } },
      );
    });
    afterAll(async () => {
      await sw?.stop();
      if (lake) rmSync(lake, { recursive: true, force: true });
    });

    it("runs a continuous export end to end, every hop over mutual TLS", async () => {
      const lines = await listeningLines(sw, 6);
      expect(lines.map((l) => l.services).sort()).toEqual(["catalog", "console", "cursor", "kusto", "query", "scheduler", "writer"]);
      expect(lines.every((l) => l.tls)).toBe(true);

      await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
      await sw.catalog.createExternalTable({
        name: "EventsLake",
        kind: "blob",
        dataFormat: "csv",
        columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }],
        connectionStrings: [`file://${lake}`],
      });
      await sw.catalog.createOrAlterContinuousExport({
        name: "EventsToLake",
        externalTable: "EventsLake",
        query: "SELECT Id, Key FROM Events",
        // Its first scheduled run is an hour away, so the run below is the one that exports the records.
        properties: { intervalBetweenRuns: { seconds: 3600n } },
      });
      await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1, "a"], [2, "b"], [3, "c"]]) });

      // catalog → cursor → scheduler → query (execute to spool) → writer (stage, upload) → cursor (commit): each hop dials with the service certificate.
      const run = await sw.catalog.runContinuousExportNow({ name: "EventsToLake" });
      expect(run.result, run.details).toBe("Completed");
      expect(run.artifacts.map((a) => a.numRecords)).toEqual([3n]);
      const [artifact] = run.artifacts;
      expect(artifact!.path.startsWith(`file://${lake}/`), artifact!.path).toBe(true);
      const written = readFileSync(artifact!.path.slice("file://".length), "utf8").trim().split("\n");
      expect(written.sort()).toEqual(["1,a", "2,b", "3,c"]);
      expect((await sw.catalog.showExportedArtifacts({ name: "EventsToLake" })).artifacts.map((a) => a.path)).toEqual([artifact!.path]);
    });

    it("refuses, on every process, a client with no certificate or one from another CA", async () => {
      const addresses = (await listeningLines(sw, 6)).map((l) => l.address);
      expect(addresses).toHaveLength(7);
      const ours = issueCertificate(ca, "probe-client", { clientAuth: true });
      const foreign = issueCertificate(otherCa, "intruder", { clientAuth: true });
      for (const address of addresses) {
        // The probe with our CA's certificate passes: a refusal below is the certificate's doing.
        expect(await probe(address, credentials.createSsl(ca.cert, ours.key, ours.cert)), address).toEqual({ code: status.OK, details: "" });
        expect((await probe(address, credentials.createSsl(ca.cert))).code, `${address} without a certificate`).toBe(status.UNAVAILABLE);
        expect((await probe(address, credentials.createSsl(ca.cert, foreign.key, foreign.cert))).code, `${address} with a foreign certificate`).toBe(status.UNAVAILABLE);
      }
    });
  });
});
