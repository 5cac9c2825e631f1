import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export const TEST_ISSUER = "https://login.test.spillway/tenant/v2.0";
export const TEST_AUDIENCE = "api://spillway-test";

interface SigningKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  jwk: JWK;
}

/**
 * An OIDC identity provider for tests: signing keys, their JWKS served over HTTP on
 * loopback (as an issuer publishes it), and tokens minted for any principal.
 */
export interface IdentityProvider {
  jwksUrl: string;
  /** The environment a Spillway process needs to trust this provider. */
  env(clusterAdmins: string[]): Record<string, string>;
  /** A user token (`sub` = id, so the principal is aaduser=<id>). */
  userToken(id: string, options?: TokenOptions): Promise<string>;
  /** An application token (client id in azp, no user claims: aadapp=<id>). */
  appToken(clientId: string, options?: TokenOptions): Promise<string>;
  /** Adds a key with a new kid to the JWKS and signs with it from now on. */
  rotate(): Promise<void>;
  /** How many times the JWKS was fetched. */
  fetches(): number;
  stop(): Promise<void>;
}

export interface TokenOptions {
  alg?: "RS256" | "ES256";
  claims?: JWTPayload;
  /** Seconds from now; negative for a token that has expired. */
  expiresIn?: number;
  notBefore?: number;
  audience?: string;
  issuer?: string;
}

export async function startIdentityProvider(): Promise<IdentityProvider> {
  const keys: SigningKey[] = [];
  let generation = 0;
  const addKey = async (alg: "RS256" | "ES256") => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `${alg.toLowerCase()}-${++generation}`;
    keys.push({ kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } });
  };
  await addKey("RS256");
  await addKey("ES256");
  let fetchCount = 0;
  const server: Server = createServer((req, res) => {
    fetchCount++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/discovery/v2.0/keys`;

  const sign = async (claims: JWTPayload, options: TokenOptions = {}) => {
    const alg = options.alg ?? "RS256";
    const key = keys.filter((k) => k.alg === alg).at(-1)!;
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT({ ...claims, ...options.claims })
      .setProtectedHeader({ alg, kid: key.kid, typ: "JWT" })
      .setIssuer(options.issuer ?? TEST_ISSUER)
      .setAudience(options.audience ?? TEST_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + (options.expiresIn ?? 3600));
    if (options.notBefore !== undefined) jwt = jwt.setNotBefore(now + options.notBefore);
    return jwt.sign(key.privateKey);
  };

  return {
    jwksUrl,
    env: (clusterAdmins) => ({
      SPILLWAY_AUTH_ISSUER: TEST_ISSUER,
      SPILLWAY_AUTH_AUDIENCE: TEST_AUDIENCE,
      SPILLWAY_AUTH_JWKS: jwksUrl,
      SPILLWAY_CLUSTER_ADMINS: clusterAdmins.join(","),
    }),
    userToken: (id, options) => sign({ sub: id, scp: "user_impersonation", name: `User ${id}` }, options),
    appToken: (clientId, options) => sign({ sub: `sp-${clientId}`, azp: clientId, idtyp: "app" }, options),
    async rotate() {
      await addKey("RS256");
      await addKey("ES256");
    },
    fetches: () => fetchCount,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
