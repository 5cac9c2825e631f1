import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseTimespan } from "@spillway/kusto";

export const TARGETS = ["all", "catalog", "query", "cursor", "writer"] as const;
export type Target = (typeof TARGETS)[number];
export type ServiceName = Exclude<Target, "all">;

export interface SpillwayConfig {
  listen: string;
  dataDir: string;
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
  /** Largest payload one Ingest or IngestStream call may bring, in bytes. */
  maxIngestBytes: number;
  /** How long an IngestStream may go without a message before it is refused, in ms. */
  ingestIdleTimeoutMs: number;
}

const MB = 1024 * 1024;

export const DEFAULTS: SpillwayConfig = {
  listen: "127.0.0.1:50051",
  dataDir: "./data",
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
  maxIngestBytes: 4 * 1024 * MB,
  ingestIdleTimeoutMs: 60_000,
};

type Raw = Partial<Record<keyof typeof KEYS, string>>;

// One table of settings: flag name, environment variable, config-file key.
const KEYS = {
  listen: { flag: "listen", env: "SPILLWAY_LISTEN" },
  dataDir: { flag: "data-dir", env: "SPILLWAY_DATA_DIR" },
  target: { flag: "target", env: "SPILLWAY_TARGET" },
  catalogAddr: { flag: "catalog-addr", env: "SPILLWAY_CATALOG_ADDR" },
  queryAddr: { flag: "query-addr", env: "SPILLWAY_QUERY_ADDR" },
  cursorAddr: { flag: "cursor-addr", env: "SPILLWAY_CURSOR_ADDR" },
  writerAddr: { flag: "writer-addr", env: "SPILLWAY_WRITER_ADDR" },
  minInterval: { flag: "min-interval", env: "SPILLWAY_MIN_INTERVAL" },
  minSizeLimit: { flag: "min-size-limit", env: "SPILLWAY_MIN_SIZE_LIMIT" },
  maxConcurrentRuns: { flag: "max-concurrent-runs", env: "SPILLWAY_MAX_CONCURRENT_RUNS" },
  schedulerTick: { flag: "scheduler-tick", env: "SPILLWAY_SCHEDULER_TICK" },
  maxIngestSize: { flag: "max-ingest-size", env: "SPILLWAY_MAX_INGEST_SIZE" },
  ingestIdleTimeout: { flag: "ingest-idle-timeout", env: "SPILLWAY_INGEST_IDLE_TIMEOUT" },
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
  const maxConcurrentRuns = raw.maxConcurrentRuns ? Number(raw.maxConcurrentRuns) : DEFAULTS.maxConcurrentRuns;
  if (!Number.isInteger(maxConcurrentRuns) || maxConcurrentRuns < 1) {
    throw new ConfigError(`max concurrent runs must be a positive integer (got ${raw.maxConcurrentRuns})`);
  }
  return {
    listen,
    dataDir: resolve(raw.dataDir ?? DEFAULTS.dataDir),
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
    maxIngestBytes: positive(raw.maxIngestSize ? parseBytes(raw.maxIngestSize, "max ingest size") : DEFAULTS.maxIngestBytes, "max ingest size", raw.maxIngestSize),
    ingestIdleTimeoutMs: positive(
      raw.ingestIdleTimeout ? parseDuration(raw.ingestIdleTimeout, "ingest idle timeout") : DEFAULTS.ingestIdleTimeoutMs,
      "ingest idle timeout",
      raw.ingestIdleTimeout,
    ),
  };
}
