import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DescService } from "@bufbuild/protobuf";
import { createHmac, generateKeyPairSync } from "node:crypto";
import { ErrorCode } from "@spillway/errors";
import { CatalogService, CursorService, Health, HealthCheckResponse_ServingStatus, QueryService, WriterService } from "@spillway/proto";
import { createGrpcClient, internalRpcs } from "@spillway/rpc";
import { catalogAccess } from "../../services/catalog/src/index.js";
import { cursorAccess } from "../../services/cursor/src/index.js";
import { queryAccess } from "../../services/query/src/index.js";
import { writerAccess } from "../../services/writer/src/index.js";
import { listServices } from "../../tools/grpcurl.js";
import { refusal } from "../support/fixtures.js";
import { startIdentityProvider, TEST_AUDIENCE, TEST_ISSUER, type IdentityProvider } from "../support/identity-provider.js";
import { runToExit, stopChild } from "../support/child-process.js";
import { waitFor } from "../support/free-port.js";
import { spawnSpillway, startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

const ADMIN = "admin-1";

const base64url = (value: object | string) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

describe("authentication with bearer tokens (SPEC §7)", () => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;
  const asToken = (token: string) => createGrpcClient(CatalogService, sw.catalogAddress, { token });
  const tokensUsed: string[] = [];
  const tableCount = async (token: string) => {
    tokensUsed.push(token);
    const client = asToken(token);
    try {
      return (await client.listTables({})).tables.length;
    } finally {
      client.close();
    }
  };

  beforeAll(async () => {
    idp = await startIdentityProvider();
    sw = await startSpillwayProcesses("all", { ...idp.env([`aaduser=${ADMIN}`, "aadapp=deployer"]), SPILLWAY_AUTH_JWKS_COOLDOWN: "1s" });
  });
  afterAll(async () => {
    await sw?.stop();
    await idp?.stop();
  });

  it("accepts RS256 and ES256 tokens of a cluster admin, user and application alike", async () => {
    expect(await tableCount(await idp.userToken(ADMIN))).toBe(0);
    expect(await tableCount(await idp.userToken(ADMIN, { alg: "ES256" }))).toBe(0);
    expect(await tableCount(await idp.appToken("deployer"))).toBe(0);
    expect(sw.output()).toContain("callers need bearer tokens from " + TEST_ISSUER);
  });

  it("keeps health and reflection open", async () => {
    const health = createGrpcClient(Health, sw.catalogAddress);
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    health.close();
    expect(await listServices(sw.catalogAddress)).toContain("spillway.catalog.v1.CatalogService");
  });

  it("takes a rotated key (a new kid) without a restart", async () => {
    await idp.rotate();
    const fetchesBefore = idp.fetches();
    // The JWKS was fetched more than the cooldown (1 s) ago, so the unknown kid triggers one fetch.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await tableCount(await idp.userToken(ADMIN))).toBe(0);
    expect(idp.fetches()).toBe(fetchesBefore + 1);
  });

  it("refuses every bad token as UNAUTHENTICATED, saying which check failed and never echoing it", async () => {
    // The classic confusion: HMAC keyed with the bytes of an RSA public key.
    const rsaPublicPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }).toString();
    const hs256 = (() => {
      const header = base64url({ alg: "HS256", typ: "JWT", kid: "rs256-1" });
      const now = Math.floor(Date.now() / 1000);
      const payload = base64url({ sub: ADMIN, iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: now + 600 });
      const sig = createHmac("sha256", rsaPublicPem).update(`${header}.${payload}`).digest("base64url");
      return `${header}.${payload}.${sig}`;
    })();
    const none = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ sub: ADMIN, iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    const unknownKid = await (async () => {
      const token = await idp.userToken(ADMIN);
      const [, payload, sig] = token.split(".");
      return `${base64url({ alg: "RS256", typ: "JWT", kid: "no-such-key" })}.${payload}.${sig}`;
    })();
    const cases: Array<[string, string | undefined, RegExp]> = [
      ["expired", await idp.userToken(ADMIN, { expiresIn: -600 }), /expired/],
      ["not yet valid", await idp.userToken(ADMIN, { notBefore: 600 }), /not valid yet/],
      ["wrong audience", await idp.userToken(ADMIN, { audience: "api://someone-else" }), /audience/],
      ["wrong issuer", await idp.userToken(ADMIN, { issuer: "https://evil.example/" }), /issuer/],
      ["alg none", none, /algorithm/],
      ["HS256 signed with a public key", hs256, /algorithm/],
      ["unknown kid", unknownKid, /kid/],
      ["garbage", "not-a-jwt-at-all", /not a JWT/],
      ["missing header", undefined, /no bearer token/],
    ];
    for (const [what, token, reason] of cases) {
      const client = createGrpcClient(CatalogService, sw.catalogAddress, token === undefined ? {} : { token });
      const err = await refusal(client.listTables({}));
      client.close();
      expect({ what, code: err.code }).toEqual({ what, code: ErrorCode.unauthenticated });
      expect(err.message, what).toMatch(reason);
      if (token) {
        for (const part of token.split(".").filter((p) => p.length >= 8)) expect(err.message, what).not.toContain(part);
      }
      tokensUsed.push(...(token ? [token] : []));
    }
  });

  it("answers internal RPCs to no outside caller, not even a cluster admin (every one the access tables declare internal)", async () => {
    const token = await idp.userToken(ADMIN);
    const services: Array<[DescService, Record<string, unknown>]> = [
      [CatalogService, catalogAccess],
      [CursorService, cursorAccess],
      [QueryService, queryAccess],
      [WriterService, writerAccess],
    ];
    const refused: string[] = [];
    for (const [service, access] of services) {
      const client = createGrpcClient(service, sw.catalogAddress, { token }) as unknown as Record<string, (r: object) => Promise<unknown> | AsyncIterable<unknown>> & { close(): void };
      for (const method of internalRpcs(access as never)) {
        const answer = client[method]!({});
        // A server stream is refused on its first read.
        const err = await refusal(Symbol.asyncIterator in answer ? (async () => { for await (const _ of answer); })() : answer);
        expect({ method, code: err.code }).toEqual({ method, code: ErrorCode.permissionDenied });
        expect(err.message).toMatch(/internal to Spillway/);
        refused.push(`${service.name}/${method}`);
      }
      client.close();
    }
    // The declaration covers what the issue named: extent paths and export states leak no more.
    expect(refused).toEqual(
      expect.arrayContaining(["CursorService/listExtents", "CursorService/getExportStates", "CursorService/listArtifacts", "CursorService/listFailures", "CursorService/startRun", "QueryService/executeToSpool", "WriterService/stageArtifacts"]),
    );
  });

  it("never writes a token into its logs", () => {
    expect(tokensUsed.length).toBeGreaterThan(5);
    for (const token of tokensUsed) {
      for (const part of token.split(".").filter((p) => p.length >= 8)) expect(sw.output()).not.toContain(part);
    }
  });
});

describe("start-up on a non-loopback address (SPEC §7: the open default is loopback only)", () => {
  const env = (extra: Record<string, string>) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SPILLWAY_")));
    return { ...clean, SPILLWAY_DATA_DIR: mkdtempSync(join(tmpdir(), "spillway-startup-")), ...extra };
  };

  it("refuses to start on 0.0.0.0 without authentication, naming the settings to give", async () => {
    const child = spawnSpillway("all", "0.0.0.0:0", env({}));
    const { code, output } = await runToExit(child);
    expect(code).toBe(2);
    expect(output).toMatch(/without authentication is refused: set SPILLWAY_AUTH_ISSUER, SPILLWAY_AUTH_AUDIENCE and SPILLWAY_AUTH_JWKS/);
    expect(output).toMatch(/--auth=none/);
  });

  it.each([
    ["with authentication configured", async (idp: IdentityProvider) => idp.env(["aaduser=someone"]), /callers need bearer tokens/],
    ["with --auth=none, warning that it is open", async () => ({ SPILLWAY_AUTH: "none" }), /WARNING: authentication is off \(--auth=none\)/],
  ])("starts %s", async (_, settings, said) => {
    const idp = await startIdentityProvider();
    const child = spawnSpillway("all", "0.0.0.0:0", env(await settings(idp)));
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    let health: ReturnType<typeof createGrpcClient<typeof Health>> | undefined;
    try {
      // The port it picked, as it reports it.
      const port = await waitFor(`spillway on 0.0.0.0 to say its port (output: ${output})`, async () => /listening on 0\.0\.0\.0:(\d+)/.exec(output)?.[1]);
      health = createGrpcClient(Health, `127.0.0.1:${port}`);
      await waitFor(`spillway on 0.0.0.0:${port} (output: ${output})`, async () => ((await health!.check({ service: "" })).status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined));
      expect(output).toMatch(said);
    } finally {
      health?.close();
      await stopChild(child);
      await idp.stop();
    }
  });
});
