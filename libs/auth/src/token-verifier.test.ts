import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { parsePrincipalFqn } from "./principal.js";
import { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from "./token-verifier.js";

const ISSUER = "https://login.example.test/tenant-1/v2.0";
const AUDIENCE = "api://spillway";

interface SigningKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(alg: "RS256" | "ES256" | "EdDSA", kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

const now = () => Math.floor(Date.now() / 1000);

/** A token that passes every check unless `claims` overrides one (undefined removes a claim). */
function mint(key: SigningKey, claims: JWTPayload = {}, kid = key.kid): Promise<string> {
  const payload = { iss: ISSUER, aud: AUDIENCE, sub: "user-1", iat: now(), exp: now() + 600, ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid, typ: "JWT" }).sign(key.privateKey);
}

const encodeJson = (value: unknown) => base64url.encode(JSON.stringify(value));

// A JWKS server whose key sets live at separate paths, so each test sees only its own requests.
const served = new Map<string, { keys: JWK[]; status: number; requests: number }>();
let server: Server;
let baseUrl: string;
let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;
let tempDir: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const entry = served.get(req.url ?? "");
    if (!entry) return void res.writeHead(404).end();
    entry.requests++;
    res.writeHead(entry.status, { "content-type": "application/json" }).end(JSON.stringify({ keys: entry.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  [rsa, ec, ed] = await Promise.all([signingKey("RS256", "rsa-1"), signingKey("ES256", "ec-1"), signingKey("EdDSA", "ed-1")]);
  tempDir = mkdtempSync(join(tmpdir(), "spillway-auth-"));
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  rmSync(tempDir, { recursive: true, force: true });
});

function serveJwks(path: string, keys: JWK[], status = 200) {
  const entry = { keys, status, requests: 0 };
  served.set(path, entry);
  return { url: baseUrl + path, entry };
}

function verifierFor(jwks: string, options: Partial<TokenVerifierOptions> = {}): TokenVerifier {
  return createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks, ...options });
}

/** Asserts an UNAUTHENTICATED rejection naming `check` and echoing no part of the token. */
async function expectRejected(verifier: TokenVerifier, authorization: string | undefined, check: string): Promise<string> {
  const err = await verifier.verify(authorization).then(
    () => new Error("the token was accepted"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SpillwayError);
  const { code, message } = err as SpillwayError;
  expect(code).toBe(ErrorCode.unauthenticated);
  expect(message).toContain(check);
  const token = (authorization ?? "").replace(/^\s*bearer\s+/i, "").trim();
  for (const part of [token, ...token.split(".")].filter((p) => p.length >= 8)) {
    expect(message).not.toContain(part);
  }
  return message;
}

describe("createTokenVerifier over a JWKS URL", () => {
  let verifier: TokenVerifier;
  beforeAll(() => {
    verifier = verifierFor(serveJwks("/shared", [rsa.jwk, ec.jwk, ed.jwk]).url);
  });

  it("accepts an RS256 user token and names the user by sub", async () => {
    const token = await mint(rsa, { name: "Ada Lovelace", oid: "oid-1", scp: "access", azp: "client-1" });
    expect(await verifier.verify(`Bearer ${token}`)).toEqual({
      fqn: "aaduser=user-1",
      kind: "user",
      displayName: "Ada Lovelace",
      objectId: "oid-1",
    });
  });

  it("accepts an ES256 application token (idtyp app) and names the app by azp", async () => {
    const token = await mint(ec, { sub: "sp-object", idtyp: "app", azp: "app-client-1", oid: "sp-oid" });
    expect(await verifier.verify(`Bearer ${token}`)).toEqual({
      fqn: "aadapp=app-client-1",
      kind: "app",
      displayName: "app-client-1",
      objectId: "sp-oid",
    });
  });

  it("lets idtyp app decide even when the token carries a user-looking claim", async () => {
    const token = await mint(rsa, { idtyp: "app", appid: "daemon-1", email: "daemon@example.test" });
    expect(await verifier.verify(`Bearer ${token}`)).toMatchObject({ fqn: "aadapp=daemon-1", kind: "app" });
  });

  it("treats a v1 token with appid and no user claims as an application", async () => {
    const token = await mint(rsa, { appid: "legacy-app" });
    expect(await verifier.verify(`Bearer ${token}`)).toMatchObject({ fqn: "aadapp=legacy-app", kind: "app", objectId: "" });
  });

  it("treats a token with appid and upn as a user token", async () => {
    const token = await mint(rsa, { appid: "client-1", upn: "ada@example.test" });
    expect(await verifier.verify(`Bearer ${token}`)).toMatchObject({ fqn: "aaduser=user-1", displayName: "ada@example.test" });
  });

  it("accepts EdDSA and a lower-case scheme", async () => {
    const token = await mint(ed, { preferred_username: "ada" });
    expect(await verifier.verify(`bearer ${token}`)).toMatchObject({ fqn: "aaduser=user-1", displayName: "ada" });
  });

  it("accepts an audience list that contains the audience", async () => {
    const token = await mint(rsa, { aud: ["api://other", AUDIENCE] });
    expect((await verifier.verify(`Bearer ${token}`)).fqn).toBe("aaduser=user-1");
  });

  it("names users by the configured claim, and refuses a token without it", async () => {
    const byUpn = verifierFor(serveJwks("/by-upn", [rsa.jwk]).url, { principalClaim: "upn" });
    const token = await mint(rsa, { upn: "ada@example.test" });
    expect((await byUpn.verify(`Bearer ${token}`)).fqn).toBe("aaduser=ada@example.test");
    await expectRejected(byUpn, `Bearer ${await mint(rsa)}`, "the token has no upn claim");
  });

  it("refuses a principal value no grant could name", async () => {
    await expectRejected(verifier, `Bearer ${await mint(rsa, { sub: "ada lovelace" })}`, "sub claim cannot name a principal");
  });

  it("allows the clock tolerance past exp, and no more", async () => {
    const justExpired = await mint(rsa, { exp: now() - 30 });
    expect((await verifier.verify(`Bearer ${justExpired}`)).fqn).toBe("aaduser=user-1");
    await expectRejected(verifier, `Bearer ${await mint(rsa, { exp: now() - 120 })}`, "the token has expired");
  });

  it("refuses a token that is not valid yet", async () => {
    await expectRejected(verifier, `Bearer ${await mint(rsa, { nbf: now() + 3600 })}`, "the token is not valid yet (nbf)");
  });

  it("refuses a token without exp", async () => {
    await expectRejected(verifier, `Bearer ${await mint(rsa, { exp: undefined })}`, "the token has no expiry (exp)");
  });

  it("refuses a token for another audience", async () => {
    await expectRejected(verifier, `Bearer ${await mint(rsa, { aud: "api://other" })}`, `the token's audience is not ${AUDIENCE}`);
  });

  it("refuses a token from another issuer", async () => {
    await expectRejected(verifier, `Bearer ${await mint(ec, { iss: "https://evil.test" })}`, `the token's issuer is not ${ISSUER}`);
  });

  it("refuses an unsigned token (alg none)", async () => {
    const payload = { iss: ISSUER, aud: AUDIENCE, sub: "user-1", exp: now() + 600 };
    const token = `${encodeJson({ alg: "none", typ: "JWT" })}.${encodeJson(payload)}.`;
    await expectRejected(verifier, `Bearer ${token}`, "algorithm none is not accepted; use one of RS256");
  });

  it("refuses HS256 signed with the RSA public key (algorithm confusion)", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    for (const secret of [new TextEncoder().encode(pem), new Uint8Array(der)]) {
      const token = await new SignJWT({ sub: "user-1", exp: now() + 600 })
        .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .sign(secret);
      await expectRejected(verifier, `Bearer ${token}`, "algorithm HS256 is not accepted; use one of RS256");
    }
  });

  it("refuses a token whose signature does not match its content", async () => {
    const [header, , signature] = (await mint(rsa)).split(".");
    const forgedPayload = encodeJson({ iss: ISSUER, aud: AUDIENCE, sub: "admin", exp: now() + 600 });
    await expectRejected(verifier, `Bearer ${header}.${forgedPayload}.${signature}`, "the token's signature does not verify");
  });

  it("refuses garbage", async () => {
    await expectRejected(verifier, "Bearer not-a-jwt-at-all", "the token is not a JWT");
    await expectRejected(verifier, "Bearer aaaaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc", "the token is not a JWT");
  });

  it("refuses a request without authorization", async () => {
    await expectRejected(verifier, undefined, "no bearer token: send 'authorization: Bearer <token>' metadata");
    await expectRejected(verifier, "  ", "no bearer token");
  });

  it("refuses authorization that is not a bearer token", async () => {
    const token = await mint(rsa);
    await expectRejected(verifier, token, "the authorization metadata is not 'Bearer <token>'");
    await expectRejected(verifier, "Basic dXNlcjpwYXNzd29yZA==", "the authorization metadata is not 'Bearer <token>'");
  });
});

describe("JWKS refresh", () => {
  it("refuses an unknown kid without hammering the JWKS server", async () => {
    const { url, entry } = serveJwks("/unknown-kid", [rsa.jwk]);
    const verifier = verifierFor(url);
    const stranger = await signingKey("RS256", "stranger");
    const strangerTokens = await Promise.all(Array.from({ length: 20 }, (_, i) => mint(stranger, { sub: `u${i}` })));

    // Concurrent first requests share one fetch; later unknown kids fall within the cooldown.
    await Promise.all(
      strangerTokens.map((token) => expectRejected(verifier, `Bearer ${token}`, "no key in the issuer's JWKS matches the token's kid")),
    );
    for (const token of strangerTokens) await expectRejected(verifier, `Bearer ${token}`, "matches the token's kid");
    expect((await verifier.verify(`Bearer ${await mint(rsa)}`)).fqn).toBe("aaduser=user-1");
    expect(entry.requests).toBe(1);
  });

  it("picks up a rotated key once the cooldown has passed, with the same verifier", async () => {
    const { url, entry } = serveJwks("/rotation", [rsa.jwk]);
    const verifier = verifierFor(url, { refreshCooldownMs: 300 });
    expect((await verifier.verify(`Bearer ${await mint(rsa)}`)).fqn).toBe("aaduser=user-1");

    const next = await signingKey("ES256", "ec-next");
    entry.keys = [rsa.jwk, next.jwk];
    const rotated = `Bearer ${await mint(next, { sub: "user-2" })}`;
    await expectRejected(verifier, rotated, "no key in the issuer's JWKS matches the token's kid");
    expect(entry.requests).toBe(1);

    await sleep(350);
    expect((await verifier.verify(rotated)).fqn).toBe("aaduser=user-2");
    expect(entry.requests).toBe(2);
  });

  it("says so when the JWKS URL is down", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const verifier = verifierFor(`http://127.0.0.1:${port}/keys?secret=s3cr3t`);
    const message = await expectRejected(
      verifier,
      `Bearer ${await mint(rsa)}`,
      `the issuer's JWKS could not be fetched from http://127.0.0.1:${port}/keys: ECONNREFUSED`,
    );
    expect(message).not.toContain("s3cr3t");
  });

  it("says so when the JWKS URL answers with an error status", async () => {
    const { url } = serveJwks("/failing", [], 503);
    await expectRejected(verifierFor(url), `Bearer ${await mint(rsa)}`, "could not be fetched from " + url + ": HTTP status 503");
  });
});

describe("JWKS file", () => {
  it("verifies against a JWKS file and re-reads it for a rotated key", async () => {
    const file = join(tempDir, "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [rsa.jwk] }));
    const verifier = verifierFor(file, { refreshCooldownMs: 200 });
    expect((await verifier.verify(`Bearer ${await mint(rsa)}`)).fqn).toBe("aaduser=user-1");

    writeFileSync(file, JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
    const rotated = `Bearer ${await mint(ec, { idtyp: "app", azp: "app-2" })}`;
    await expectRejected(verifier, rotated, "no key in the issuer's JWKS matches the token's kid");
    await sleep(250);
    expect((await verifier.verify(rotated)).fqn).toBe("aadapp=app-2");
  });

  it("says so when the JWKS file cannot be read", async () => {
    const verifier = verifierFor(join(tempDir, "missing.json"));
    await expectRejected(verifier, `Bearer ${await mint(rsa)}`, "the issuer's JWKS could not be read from its file: ENOENT");
  });

  it("says so when the JWKS file is not a JWK set", async () => {
    const file = join(tempDir, "not-jwks.json");
    writeFileSync(file, JSON.stringify({ hello: "world" }));
    await expectRejected(verifierFor(file), `Bearer ${await mint(rsa)}`, "the issuer's JWKS is not usable");
  });
});

describe("parsePrincipalFqn", () => {
  it("accepts aaduser= and aadapp= in any case and lower-cases the prefix", () => {
    expect(parsePrincipalFqn("AADUser=Ada@Example.test")).toBe("aaduser=Ada@Example.test");
    expect(parsePrincipalFqn("aadapp=4a7f9c3e-0000-4000-8000-000000000001")).toBe("aadapp=4a7f9c3e-0000-4000-8000-000000000001");
  });

  it.each(["ada@example.test", "aadgroup=admins", "aaduser=", "aadapp=has space", "aaduser=tab\there", `aadapp=${"x".repeat(257)}`])(
    "refuses %j, naming the accepted forms",
    (text) => {
      let caught: unknown;
      try {
        parsePrincipalFqn(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SpillwayError);
      expect((caught as SpillwayError).code).toBe(ErrorCode.invalidArgument);
      expect((caught as SpillwayError).message).toContain("'aaduser=<user id>' or 'aadapp=<application id>'");
    },
  );
});
