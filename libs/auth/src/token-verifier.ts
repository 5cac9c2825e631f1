import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type FetchImplementation,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from "jose";
import { ErrorCode, SpillwayError, errorMessage, invalidArgument } from "@spillway/errors";
import { PRINCIPAL_PREFIX, principalValueProblem, type Principal } from "./principal.js";

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  /** http(s):// URL of the issuer's JWKS, or a local file path (or file: URL) of a JWKS JSON. */
  jwks: string;
  /** The claim naming a user; default "sub". */
  principalClaim?: string;
  /** Default 60. */
  clockToleranceSeconds?: number;
  /** Minimum time between JWKS re-fetches (or re-reads) caused by an unknown kid; default 30000. */
  refreshCooldownMs?: number;
}

export interface TokenVerifier {
  /** `authorization` is the raw value of the gRPC `authorization` metadata. */
  verify(authorization: string | undefined): Promise<Principal>;
}

/** Asymmetric only: with a public JWKS, an HMAC algorithm would make the public key a shared secret. */
export const ACCEPTED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"] as const;

// Claims only a token issued to a user carries; an app token has none of them (Entra ID v1 and v2).
const USER_ONLY_CLAIMS = ["scp", "upn", "preferred_username", "unique_name", "email"] as const;

// RFC 6750 §2.1: the scheme is case-insensitive, the token is a b64token.
const BEARER = /^\s*bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i;

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const principalClaim = options.principalClaim ?? "sub";
  const clockTolerance = options.clockToleranceSeconds ?? 60;
  const cooldown = options.refreshCooldownMs ?? 30_000;
  requireText("issuer", options.issuer);
  requireText("audience", options.audience);
  requireText("jwks", options.jwks);
  requireText("principalClaim", principalClaim);
  requireNonNegative("clockToleranceSeconds", clockTolerance);
  requireNonNegative("refreshCooldownMs", cooldown);

  const resolveKey = createJwksKeyResolver(options.jwks, cooldown);
  const verifyOptions: JWTVerifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms: [...ACCEPTED_ALGORITHMS],
    clockTolerance,
    requiredClaims: ["exp"],
  };

  return {
    async verify(authorization) {
      const token = bearerToken(authorization);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, resolveKey, verifyOptions));
      } catch (err) {
        throw err instanceof SpillwayError ? err : unauthenticated(describeRejection(err, token, options));
      }
      return principalFromClaims(payload, principalClaim);
    },
  };
}

function bearerToken(authorization: string | undefined): string {
  if (!authorization?.trim()) throw unauthenticated("no bearer token: send 'authorization: Bearer <token>' metadata");
  const match = BEARER.exec(authorization);
  if (!match) throw unauthenticated("the authorization metadata is not 'Bearer <token>'");
  return match[1]!;
}

/**
 * A key resolver over the issuer's JWKS. A file goes through jose's remote set too, so both
 * sources share one policy: read once, read again on an unknown kid at most once per
 * cooldown, concurrent reloads coalesced.
 */
function createJwksKeyResolver(jwks: string, cooldown: number): JWTVerifyGetKey {
  const remote = /^https?:\/\//i.test(jwks);
  const url = remote || jwks.startsWith("file:") ? new URL(jwks) : pathToFileURL(resolve(jwks));
  // The host and path help an operator; a query string may hold a secret.
  const unreachable = remote ? `could not be fetched from ${url.origin}${url.pathname}` : "could not be read from its file";
  const keySet = createRemoteJWKSet(url, {
    cooldownDuration: cooldown,
    // A URL keeps jose's default maximum age, so keys the issuer withdrew stop verifying; a
    // file changes only when an operator rotates it, and the unknown kid that follows re-reads it.
    ...(remote ? { [customFetch]: fetchJwks(unreachable) } : { [customFetch]: readJwksFile(unreachable), cacheMaxAge: Infinity }),
  });

  return async (header, token) => {
    try {
      return await keySet(header, token);
    } catch (err) {
      // No key, or several, for this kid is the token's failure; describeRejection words it.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      if (err instanceof SpillwayError) throw err;
      if (err instanceof errors.JWKSTimeout) throw jwksUnreachable(unreachable, "timed out");
      throw unauthenticated(`the issuer's JWKS is not usable: ${errorMessage(err)}`);
    }
  };
}

/** fetch, with its failures worded here, where it is still known that fetching failed. */
function fetchJwks(unreachable: string): FetchImplementation {
  return async (href, init) => {
    let response: Response;
    try {
      response = await fetch(href, init);
    } catch (err) {
      const reason = err instanceof Error && err.name === "TimeoutError" ? "timed out" : failureCode(err);
      throw jwksUnreachable(unreachable, reason);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw jwksUnreachable(unreachable, `HTTP status ${response.status}`);
    }
    return response;
  };
}

function readJwksFile(unreachable: string): FetchImplementation {
  return async (href, { signal }) => {
    try {
      return new Response(await readFile(fileURLToPath(href), { encoding: "utf8", signal }), { status: 200 });
    } catch (err) {
      throw jwksUnreachable(unreachable, failureCode(err));
    }
  };
}

function jwksUnreachable(unreachable: string, reason: string): SpillwayError {
  return unauthenticated(`the issuer's JWKS ${unreachable}: ${reason}`);
}

/** The system error code (ECONNREFUSED, ENOENT, ...) when there is one: short and says enough. */
function failureCode(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return errorMessage(err);
}

/** Says which check the token failed, never echoing the token or any part of it. */
function describeRejection(err: unknown, token: string, options: TokenVerifierOptions): string {
  if (err instanceof errors.JWTExpired) return "the token has expired";
  if (err instanceof errors.JWTClaimValidationFailed) return describeClaimFailure(err, options);
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return `algorithm ${tokenAlgorithm(token)} is not accepted; use one of ${ACCEPTED_ALGORITHMS.join(", ")}`;
  }
  if (err instanceof errors.JWKSNoMatchingKey) return "no key in the issuer's JWKS matches the token's kid";
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    return "more than one key in the issuer's JWKS matches the token: the token must name its key (kid)";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return "the token is not a JWT";
  if (err instanceof errors.JOSENotSupported) return "the token uses a JOSE feature that is not supported";
  return `the token could not be verified (${err instanceof Error ? err.name : "unknown error"})`;
}

function describeClaimFailure(err: errors.JWTClaimValidationFailed, options: TokenVerifierOptions): string {
  const missing = err.reason === "missing";
  switch (err.claim) {
    case "exp":
      return missing ? "the token has no expiry (exp)" : "the token's exp claim is not a number";
    case "nbf":
      return err.reason === "invalid" ? "the token's nbf claim is not a number" : "the token is not valid yet (nbf)";
    case "aud":
      return missing ? `the token has no audience; expected ${options.audience}` : `the token's audience is not ${options.audience}`;
    case "iss":
      return missing ? `the token has no issuer; expected ${options.issuer}` : `the token's issuer is not ${options.issuer}`;
    default:
      return `the token's ${err.claim} claim is not valid`;
  }
}

/** The header's alg when it is a plain algorithm name; anything else is not worth repeating. */
function tokenAlgorithm(token: string): string {
  try {
    const { alg } = decodeProtectedHeader(token);
    if (typeof alg === "string" && /^[A-Za-z0-9+-]{1,20}$/.test(alg)) return alg;
  } catch {
    // jose parsed this header a moment ago; failing here only loses the name.
  }
  return "(unnamed)";
}

function principalFromClaims(claims: JWTPayload, principalClaim: string): Principal {
  const objectId = stringClaim(claims, "oid") ?? "";
  if (isAppToken(claims)) {
    const appId = stringClaim(claims, "azp") ?? stringClaim(claims, "appid");
    if (appId === undefined) throw unauthenticated("the application token has no azp or appid claim");
    return {
      fqn: principalFqn("app", appId, claims.azp === appId ? "azp" : "appid"),
      kind: "app",
      displayName: displayName(claims, appId),
      objectId,
    };
  }
  const userId = stringClaim(claims, principalClaim);
  if (userId === undefined) throw unauthenticated(`the token has no ${principalClaim} claim naming the user`);
  return {
    fqn: principalFqn("user", userId, principalClaim),
    kind: "user",
    displayName: displayName(claims, userId),
    objectId,
  };
}

function displayName(claims: JWTPayload, fallback: string): string {
  return stringClaim(claims, "name") ?? stringClaim(claims, "preferred_username") ?? stringClaim(claims, "upn") ?? fallback;
}

function isAppToken(claims: JWTPayload): boolean {
  if (claims.idtyp === "app") return true;
  const hasAppId = claims.azp !== undefined || claims.appid !== undefined;
  return hasAppId && USER_ONLY_CLAIMS.every((claim) => claims[claim] === undefined);
}

function principalFqn(kind: Principal["kind"], value: string, claim: string): string {
  const problem = principalValueProblem(value);
  if (problem) throw unauthenticated(`the token's ${claim} claim cannot name a principal: it ${problem}`);
  return PRINCIPAL_PREFIX[kind] + value;
}

function stringClaim(claims: JWTPayload, claim: string): string | undefined {
  const value = claims[claim];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function unauthenticated(message: string): SpillwayError {
  return new SpillwayError(ErrorCode.unauthenticated, message);
}

function requireText(option: string, value: string): void {
  if (typeof value !== "string" || value.trim() === "") throw invalidArgument(`token verifier option ${option} is required`);
}

function requireNonNegative(option: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw invalidArgument(`token verifier option ${option} must be a non-negative number`);
  }
}
