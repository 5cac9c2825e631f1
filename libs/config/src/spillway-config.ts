import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { parseTimespan } from "@spillway/kusto";

export const TARGETS = ["all", "catalog", "query", "cursor", "writer", "scheduler", "kusto", "console"] as const;
export type Target = (typeof TARGETS)[number];
/**
 * The modules other modules call, each reached at a peer address when it runs in another
 * process. The scheduler serves no RPC, the Kusto front door serves only clients and the
 * console only browsers: no module calls any of them.
 */
export type ServiceName = Exclude<Target, "all" | "scheduler" | "kusto" | "console">;

export interface SpillwayConfig {
  listen: string;
  dataDir: string;
  /**
   * PostgreSQL holding the catalog and cursor stores (postgres://user:password@host:port/db),
   * shared by every node that names it; absent: DuckDB files in dataDir. Holds a password:
   * never printed.
   */
  metadataUrl?: string;
  /**
   * Shared storage every node keeps extents in, as an external table's connection string
   * (`https://account.blob.core.windows.net/container/folder;key`, or `file:///folder`);
   * absent: `<dataDir>/extents`, this host only. Holds a key: never printed.
   */
  extentStore?: string;
  /** Most bytes of extents a node keeps copies of (query nodes read shared extents through it). */
  extentCacheBytes: number;
  /** host:port other nodes reach this one at; default: the listen address (the host name when it listens on every interface). */
  advertiseAddr?: string;
  /** Least bytes of extents a run reads for it to be split over the live nodes. */
  distributedMinBytes: number;
  /** Bytes of extents a row-wise run's slice reads, each slice uploading while the next is queried; 0: whole runs. */
  runSliceBytes: number;
  /** host:port of the Prometheus scrape endpoint (`/metrics`); absent: none. */
  metricsListen?: string;
  /** host:port of the console (read-only web pages over HTTP); absent: none. */
  httpListen?: string;
  target: Target;
  /** Where each service is reached when it runs in another process. */
  peers: Record<ServiceName, string>;
  /** Lowest intervalBetweenRuns an export may have, in ms (SPEC §4: 1m; may go down to 1s). */
  minIntervalMs: number;
  /** Lowest sizeLimit an export may have, in bytes (SPEC §4: 100 MB). */
  minSizeLimit: number;
  /** How many export runs may be in flight at once (the capacity policy). */
  maxConcurrentRuns: number;
  /** How often the scheduler looks for due exports, in ms. */
  schedulerTickMs: number;
  /**
   * How long a run's lease on its export lasts unless renewed, in ms: how long the exports of
   * a node that died wait before another node runs them (the lease is renewed at a third of it).
   */
  runLeaseMs: number;
  /** How long the file of a dropped extent (drop table, set-or-replace) is kept for queries and runs that listed it before, in ms. */
  droppedExtentGraceMs: number;
  /** Largest payload one Ingest or IngestStream call may bring, in bytes. */
  maxIngestBytes: number;
  /** How long an IngestStream may go without a message before it is refused, in ms. */
  ingestIdleTimeoutMs: number;
  /**
   * Absolute folders a `file://` connection string may point into (SPEC §7). Resolved at
   * load: the open loopback default allows ./lake and the OS temp folder; with auth on,
   * none until the operator lists them.
   */
  fileTargetRoots: string[];
  auth: AuthConfig;
  /** TLS for the server and for dialing peers; absent: plaintext. */
  tls?: TlsConfig;
  limits: CallLimits;
}

/**
 * Who may call (SPEC §7). `open`: no authentication, every caller has every right, only
 * on a loopback address. `none`: the same, chosen explicitly with --auth=none for any
 * address. `jwt`: bearer tokens checked against the issuer's JWKS.
 */
export type AuthConfig =
  | { mode: "open" | "none"; clusterAdmins: string[]; clusterViewers: string[] }
  | {
      mode: "jwt";
      issuer: string;
      audience: string;
      /** http(s) URL of the issuer's JWKS, or a local file. */
      jwks: string;
      principalClaim: string;
      /** Least time between two fetches of the JWKS for a token with an unknown key id, in ms. */
      jwksCooldownMs: number;
      /** Principals with every right on every database: how the first admin is made. */
      clusterAdmins: string[];
      clusterViewers: string[];
    };

export interface TlsConfig {
  /** PEM contents, read at load. */
  cert: Buffer;
  key: Buffer;
  /** When set, every caller must present a certificate signed by it (mutual TLS). */
  clientCa?: Buffer;
  /** What peers' certificates are checked against when this process dials them; defaults to clientCa, then the system's roots. */
  peerCa?: Buffer;
}

export interface CallLimits {
  /** Query calls one principal may have in flight at once. */
  maxQueriesPerPrincipal: number;
  /** Ingest and IngestStream calls one principal may have in flight at once. */
  maxIngestsPerPrincipal: number;
  /** Longest an ad-hoc query may run, in ms. */
  queryTimeoutMs: number;
  /** Largest result an ad-hoc query may return: rows, and bytes as JSON text. */
  maxQueryResultRows: number;
  maxQueryResultBytes: number;
  /** DuckDB memory_limit of the instance running ad-hoc queries, e.g. "2GB". */
  queryMemoryLimit: string;
}

const MB = 1024 * 1024;

export const DEFAULTS: SpillwayConfig = {
  listen: "127.0.0.1:50051",
  dataDir: "./data",
  extentCacheBytes: 10 * 1024 * MB,
  distributedMinBytes: 64 * MB,
  runSliceBytes: 0,
  metricsListen: "127.0.0.1:9464",
  httpListen: "127.0.0.1:8080",
  target: "all",
  peers: {
    catalog: "127.0.0.1:50051",
    query: "127.0.0.1:50051",
    cursor: "127.0.0.1:50051",
    writer: "127.0.0.1:50051",
  },
  minIntervalMs: 60_000,
  minSizeLimit: 100 * MB,
  maxConcurrentRuns: 4,
  schedulerTickMs: 1000,
  runLeaseMs: 30_000,
  droppedExtentGraceMs: 5 * 60_000,
  maxIngestBytes: 4 * 1024 * MB,
  ingestIdleTimeoutMs: 60_000,
  fileTargetRoots: [],
  auth: { mode: "open", clusterAdmins: [], clusterViewers: [] },
  limits: {
    maxQueriesPerPrincipal: 16,
    maxIngestsPerPrincipal: 16,
    queryTimeoutMs: 4 * 60_000,
    maxQueryResultRows: 500_000,
    maxQueryResultBytes: 64 * MB,
    queryMemoryLimit: "2GB",
  },
};

type Raw = Partial<Record<keyof typeof KEYS, string>>;

// One table of settings: flag name, environment variable, config-file key.
const KEYS = {
  listen: { flag: "listen", env: "SPILLWAY_LISTEN" },
  dataDir: { flag: "data-dir", env: "SPILLWAY_DATA_DIR" },
  metadataUrl: { flag: "metadata-url", env: "SPILLWAY_METADATA_URL" },
  extentStore: { flag: "extent-store", env: "SPILLWAY_EXTENT_STORE" },
  extentCacheSize: { flag: "extent-cache-size", env: "SPILLWAY_EXTENT_CACHE_SIZE" },
  advertiseAddr: { flag: "advertise-addr", env: "SPILLWAY_ADVERTISE_ADDR" },
  distributedMinSize: { flag: "distributed-min-size", env: "SPILLWAY_DISTRIBUTED_MIN_SIZE" },
  runSliceSize: { flag: "run-slice-size", env: "SPILLWAY_RUN_SLICE_SIZE" },
  metricsListen: { flag: "metrics-listen", env: "SPILLWAY_METRICS_LISTEN" },
  httpListen: { flag: "http-listen", env: "SPILLWAY_HTTP_LISTEN" },
  target: { flag: "target", env: "SPILLWAY_TARGET" },
  catalogAddr: { flag: "catalog-addr", env: "SPILLWAY_CATALOG_ADDR" },
  queryAddr: { flag: "query-addr", env: "SPILLWAY_QUERY_ADDR" },
  cursorAddr: { flag: "cursor-addr", env: "SPILLWAY_CURSOR_ADDR" },
  writerAddr: { flag: "writer-addr", env: "SPILLWAY_WRITER_ADDR" },
  minInterval: { flag: "min-interval", env: "SPILLWAY_MIN_INTERVAL" },
  minSizeLimit: { flag: "min-size-limit", env: "SPILLWAY_MIN_SIZE_LIMIT" },
  maxConcurrentRuns: { flag: "max-concurrent-runs", env: "SPILLWAY_MAX_CONCURRENT_RUNS" },
  schedulerTick: { flag: "scheduler-tick", env: "SPILLWAY_SCHEDULER_TICK" },
  runLease: { flag: "run-lease", env: "SPILLWAY_RUN_LEASE" },
  droppedExtentGrace: { flag: "dropped-extent-grace", env: "SPILLWAY_DROPPED_EXTENT_GRACE" },
  maxIngestSize: { flag: "max-ingest-size", env: "SPILLWAY_MAX_INGEST_SIZE" },
  ingestIdleTimeout: { flag: "ingest-idle-timeout", env: "SPILLWAY_INGEST_IDLE_TIMEOUT" },
  fileTargetRoots: { flag: "file-target-roots", env: "SPILLWAY_FILE_TARGET_ROOTS" },
  auth: { flag: "auth", env: "SPILLWAY_AUTH" },
  authIssuer: { flag: "auth-issuer", env: "SPILLWAY_AUTH_ISSUER" },
  authAudience: { flag: "auth-audience", env: "SPILLWAY_AUTH_AUDIENCE" },
  authJwks: { flag: "auth-jwks", env: "SPILLWAY_AUTH_JWKS" },
  authPrincipalClaim: { flag: "auth-principal-claim", env: "SPILLWAY_AUTH_PRINCIPAL_CLAIM" },
  authJwksCooldown: { flag: "auth-jwks-cooldown", env: "SPILLWAY_AUTH_JWKS_COOLDOWN" },
  clusterAdmins: { flag: "cluster-admins", env: "SPILLWAY_CLUSTER_ADMINS" },
  clusterViewers: { flag: "cluster-viewers", env: "SPILLWAY_CLUSTER_VIEWERS" },
  tlsCert: { flag: "tls-cert", env: "SPILLWAY_TLS_CERT" },
  tlsKey: { flag: "tls-key", env: "SPILLWAY_TLS_KEY" },
  tlsClientCa: { flag: "tls-client-ca", env: "SPILLWAY_TLS_CLIENT_CA" },
  tlsCa: { flag: "tls-ca", env: "SPILLWAY_TLS_CA" },
  maxQueriesPerPrincipal: { flag: "max-queries-per-principal", env: "SPILLWAY_MAX_QUERIES_PER_PRINCIPAL" },
  maxIngestsPerPrincipal: { flag: "max-ingests-per-principal", env: "SPILLWAY_MAX_INGESTS_PER_PRINCIPAL" },
  queryTimeout: { flag: "query-timeout", env: "SPILLWAY_QUERY_TIMEOUT" },
  maxQueryResultRows: { flag: "max-query-result-rows", env: "SPILLWAY_MAX_QUERY_RESULT_ROWS" },
  maxQueryResultSize: { flag: "max-query-result-size", env: "SPILLWAY_MAX_QUERY_RESULT_SIZE" },
  queryMemoryLimit: { flag: "query-memory-limit", env: "SPILLWAY_QUERY_MEMORY_LIMIT" },
  config: { flag: "config", env: "SPILLWAY_CONFIG" },
} as const;

export class ConfigError extends Error {}

function parseFlags(argv: readonly string[]): Raw {
  const raw: Raw = {};
  const byFlag = new Map<string, keyof typeof KEYS>(Object.entries(KEYS).map(([key, k]) => [k.flag, key as keyof typeof KEYS]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new ConfigError(`unexpected argument '${arg}'`);
    const key = byFlag.get(m[1]!);
    if (!key) throw new ConfigError(`unknown flag --${m[1]}; known: ${[...byFlag.keys()].map((f) => `--${f}`).join(" ")}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag --${m[1]} needs a value`);
    raw[key] = value;
  }
  return raw;
}

function fromEnv(env: NodeJS.ProcessEnv): Raw {
  const raw: Raw = {};
  for (const [key, k] of Object.entries(KEYS)) {
    const value = env[k.env];
    if (value !== undefined && value !== "") raw[key as keyof typeof KEYS] = value;
  }
  return raw;
}

function fromFile(path: string): Raw {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  const raw: Raw = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!(key in KEYS)) throw new ConfigError(`config file ${path}: unknown key '${key}'`);
    raw[key as keyof typeof KEYS] = String(value);
  }
  return raw;
}

function parseBytes(text: string, what: string): number {
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(text.trim());
  if (!m) throw new ConfigError(`${what}: '${text}' is not a size; write e.g. 1048576, 64KB, 100MB`);
  const unit = { b: 1, kb: 1024, mb: MB, gb: 1024 * MB }[(m[2] ?? "b").toLowerCase() as "b"];
  return Number(m[1]) * unit;
}

function parseDuration(text: string, what: string): number {
  try {
    return parseTimespan(text, what);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

function positiveInteger(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${what} must be a positive integer (got ${text})`);
  return value;
}

const list = (text: string | undefined) => (text ?? "").split(",").map((s) => s.trim()).filter(Boolean);

/** Loopback listen addresses are reachable from this host only (SPEC §7: the open default). */
export function isLoopbackListen(listen: string): boolean {
  const host = listen.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

function authConfig(raw: Raw, listen: string): AuthConfig {
  const clusterAdmins = list(raw.clusterAdmins);
  const clusterViewers = list(raw.clusterViewers);
  const jwtSettings = { issuer: raw.authIssuer, audience: raw.authAudience, jwks: raw.authJwks };
  const given = Object.entries(jwtSettings).filter(([, v]) => v);
  if (raw.auth !== undefined && raw.auth !== "none" && raw.auth !== "jwt") {
    throw new ConfigError(`auth '${raw.auth}' is not one of none, jwt (jwt is implied by SPILLWAY_AUTH_ISSUER, SPILLWAY_AUTH_AUDIENCE and SPILLWAY_AUTH_JWKS)`);
  }
  if (raw.auth === "none") {
    if (given.length) throw new ConfigError("--auth=none turns authentication off, but SPILLWAY_AUTH_ISSUER/AUDIENCE/JWKS are set: drop one or the other");
    return { mode: "none", clusterAdmins, clusterViewers };
  }
  if (given.length === 0 && raw.auth !== "jwt") {
    if (!isLoopbackListen(listen)) {
      throw new ConfigError(
        `listening on ${listen} without authentication is refused: set SPILLWAY_AUTH_ISSUER, SPILLWAY_AUTH_AUDIENCE and SPILLWAY_AUTH_JWKS ` +
          `(the identity provider's issuer, this API's audience and the JWKS URL) and SPILLWAY_CLUSTER_ADMINS, ` +
          `or listen on a loopback address, or pass --auth=none to run open on purpose`,
      );
    }
    return { mode: "open", clusterAdmins, clusterViewers };
  }
  const missing = Object.entries({ SPILLWAY_AUTH_ISSUER: raw.authIssuer, SPILLWAY_AUTH_AUDIENCE: raw.authAudience, SPILLWAY_AUTH_JWKS: raw.authJwks })
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) throw new ConfigError(`authentication needs ${missing.join(", ")} as well`);
  for (const p of [...clusterAdmins, ...clusterViewers]) {
    if (!/^(aaduser|aadapp)=\S+$/i.test(p)) throw new ConfigError(`cluster principal '${p}' is not written as aaduser=<id> or aadapp=<client id>`);
  }
  return {
    mode: "jwt",
    issuer: raw.authIssuer!,
    audience: raw.authAudience!,
    jwks: raw.authJwks!,
    principalClaim: raw.authPrincipalClaim || "sub",
    jwksCooldownMs: raw.authJwksCooldown ? parseDuration(raw.authJwksCooldown, "auth JWKS cooldown") : 30_000,
    clusterAdmins,
    clusterViewers,
  };
}

function readPem(path: string | undefined, what: string): Buffer | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function tlsConfig(raw: Raw): TlsConfig | undefined {
  if (!raw.tlsCert && !raw.tlsKey) {
    if (raw.tlsClientCa) throw new ConfigError("SPILLWAY_TLS_CLIENT_CA needs SPILLWAY_TLS_CERT and SPILLWAY_TLS_KEY: mutual TLS is TLS first");
    return undefined;
  }
  if (!raw.tlsCert || !raw.tlsKey) throw new ConfigError("TLS needs both SPILLWAY_TLS_CERT and SPILLWAY_TLS_KEY (PEM files)");
  const clientCa = readPem(raw.tlsClientCa, "TLS client CA");
  return {
    cert: readPem(raw.tlsCert, "TLS certificate")!,
    key: readPem(raw.tlsKey, "TLS key")!,
    clientCa,
    peerCa: readPem(raw.tlsCa, "TLS CA") ?? clientCa,
  };
}

/** Without configured roots, the open default may write to ./lake and the OS temp folder (the README quick start); with auth on, nowhere. */
function fileTargetRoots(raw: Raw, auth: AuthConfig): string[] {
  const roots = list(raw.fileTargetRoots);
  for (const r of roots) if (!r.startsWith("/")) throw new ConfigError(`file target root '${r}' is not an absolute folder`);
  if (roots.length) return roots.map((r) => resolve(r));
  return auth.mode === "jwt" ? [] : [resolve("lake"), tmpdir()];
}

/** A listen address of an HTTP endpoint: host:port, or 'off' for none. */
function httpAddress(text: string | undefined, fallback: string, what: string): string | undefined {
  if (text === undefined) return fallback;
  if (text.trim() === "off") return undefined;
  if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(text.trim())) throw new ConfigError(`${what} listen address '${text}' is not host:port (or 'off')`);
  return text.trim();
}

function runLease(text: string | undefined): number {
  if (!text) return DEFAULTS.runLeaseMs;
  const ms = parseDuration(text, "run lease");
  if (ms < 1000) throw new ConfigError(`run lease must be at least 1s (got ${text})`);
  return ms;
}

function metadataUrl(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not echoed: the text may hold the database password.
    throw new ConfigError("metadata URL (SPILLWAY_METADATA_URL) is not a URL; expected postgres://user:password@host:port/database");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError(`metadata URL (SPILLWAY_METADATA_URL) has scheme '${url.protocol.replace(/:$/, "")}'; only postgres:// (PostgreSQL) is supported`);
  }
  if (!url.hostname || url.pathname.length <= 1) throw new ConfigError("metadata URL (SPILLWAY_METADATA_URL) needs a host and a database: postgres://user:password@host:port/database");
  return text;
}

function positive(value: number, what: string, text: string | undefined): number {
  if (!(value > 0)) throw new ConfigError(`${what} must be more than zero (got ${text})`);
  return value;
}

/** Flags override environment variables, which override a config file, which overrides defaults. */
export function loadConfig(argv: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): SpillwayConfig {
  const flags = parseFlags(argv);
  const envRaw = fromEnv(env);
  const configPath = flags.config ?? envRaw.config;
  const raw: Raw = { ...(configPath ? fromFile(configPath) : {}), ...envRaw, ...flags };

  const target = (raw.target ?? DEFAULTS.target) as Target;
  if (!TARGETS.includes(target)) throw new ConfigError(`target '${raw.target}' is not one of ${TARGETS.join(", ")}`);
  const listen = raw.listen ?? DEFAULTS.listen;
  const minIntervalMs = raw.minInterval ? parseDuration(raw.minInterval, "min interval") : DEFAULTS.minIntervalMs;
  if (minIntervalMs < 1000) throw new ConfigError(`min interval must be at least 1s (got ${raw.minInterval})`);
  const maxConcurrentRuns = positiveInteger(raw.maxConcurrentRuns, DEFAULTS.maxConcurrentRuns, "max concurrent runs");
  const auth = authConfig(raw, listen);
  const httpListen = httpAddress(raw.httpListen, DEFAULTS.httpListen!, "console");
  if (auth.mode === "open" && httpListen && !isLoopbackListen(httpListen)) {
    throw new ConfigError(`the console on ${httpListen} without authentication is refused: configure authentication as for the API, or give SPILLWAY_HTTP_LISTEN a loopback address, or 'off'`);
  }
  const limits = DEFAULTS.limits;
  const queryMemoryLimit = raw.queryMemoryLimit ?? limits.queryMemoryLimit;
  if (!/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(queryMemoryLimit)) {
    throw new ConfigError(`query memory limit '${queryMemoryLimit}' is not a size such as 512MB or 4GB`);
  }
  return {
    listen,
    dataDir: resolve(raw.dataDir ?? DEFAULTS.dataDir),
    metadataUrl: metadataUrl(raw.metadataUrl),
    extentStore: raw.extentStore?.trim() || undefined,
    advertiseAddr: raw.advertiseAddr?.trim() || undefined,
    metricsListen: httpAddress(raw.metricsListen, DEFAULTS.metricsListen!, "metrics"),
    httpListen,
    distributedMinBytes: raw.distributedMinSize ? parseBytes(raw.distributedMinSize, "distributed min size") : DEFAULTS.distributedMinBytes,
    runSliceBytes: raw.runSliceSize ? parseBytes(raw.runSliceSize, "run slice size") : DEFAULTS.runSliceBytes,
    extentCacheBytes: raw.extentCacheSize ? positive(parseBytes(raw.extentCacheSize, "extent cache size"), "extent cache size", raw.extentCacheSize) : DEFAULTS.extentCacheBytes,
    target,
    // In one process every peer is this server; split processes name their peers.
    peers: {
      catalog: raw.catalogAddr ?? listen,
      query: raw.queryAddr ?? listen,
      cursor: raw.cursorAddr ?? listen,
      writer: raw.writerAddr ?? listen,
    },
    minIntervalMs,
    minSizeLimit: raw.minSizeLimit ? parseBytes(raw.minSizeLimit, "min size limit") : DEFAULTS.minSizeLimit,
    maxConcurrentRuns,
    schedulerTickMs: raw.schedulerTick ? parseDuration(raw.schedulerTick, "scheduler tick") : Math.min(DEFAULTS.schedulerTickMs, minIntervalMs),
    runLeaseMs: runLease(raw.runLease),
    droppedExtentGraceMs: raw.droppedExtentGrace ? parseDuration(raw.droppedExtentGrace, "dropped extent grace") : DEFAULTS.droppedExtentGraceMs,
    maxIngestBytes: positive(raw.maxIngestSize ? parseBytes(raw.maxIngestSize, "max ingest size") : DEFAULTS.maxIngestBytes, "max ingest size", raw.maxIngestSize),
    ingestIdleTimeoutMs: positive(
      raw.ingestIdleTimeout ? parseDuration(raw.ingestIdleTimeout, "ingest idle timeout") : DEFAULTS.ingestIdleTimeoutMs,
      "ingest idle timeout",
      raw.ingestIdleTimeout,
    ),
    fileTargetRoots: fileTargetRoots(raw, auth),
    auth,
    tls: tlsConfig(raw),
    limits: {
      maxQueriesPerPrincipal: positiveInteger(raw.maxQueriesPerPrincipal, limits.maxQueriesPerPrincipal, "max queries per principal"),
      maxIngestsPerPrincipal: positiveInteger(raw.maxIngestsPerPrincipal, limits.maxIngestsPerPrincipal, "max ingests per principal"),
      queryTimeoutMs: positive(raw.queryTimeout ? parseDuration(raw.queryTimeout, "query timeout") : limits.queryTimeoutMs, "query timeout", raw.queryTimeout),
      maxQueryResultRows: positiveInteger(raw.maxQueryResultRows, limits.maxQueryResultRows, "max query result rows"),
      maxQueryResultBytes: positive(raw.maxQueryResultSize ? parseBytes(raw.maxQueryResultSize, "max query result size") : limits.maxQueryResultBytes, "max query result size", raw.maxQueryResultSize),
      queryMemoryLimit,
    },
  };
}
