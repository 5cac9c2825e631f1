import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { stopChild } from "./child-process.js";

export interface Postgres {
  /** postgres://user:password@127.0.0.1:port/postgres */
  adminUrl: string;
  /** A new, empty database on the server; its URL. */
  createDatabase(): Promise<string>;
  /** Drops the database at `url` (made by createDatabase), closing what is still connected to it. */
  dropDatabase(url: string): Promise<void>;
  stop(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL("../../tools/postgres/embedded-postgres-server.ts", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

/**
 * Uses the PostgreSQL that .ci/run started (SPILLWAY_TEST_POSTGRES_URL, its admin URL) or
 * starts one from npm for this test file (tools/postgres), the way Azurite is used.
 */
export async function usePostgres(): Promise<Postgres> {
  const given = process.env.SPILLWAY_TEST_POSTGRES_URL;
  if (given) return onServer(given, async () => undefined);
  const child = spawn(TSX, [SERVER_SCRIPT], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const adminUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`embedded PostgreSQL did not start in 60 s: ${output}`)), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
      const m = /postgres listening on (127\.0\.0\.1:\d+) as (\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(`postgres://${m[2]}:spillway-test@${m[1]}/postgres`);
      }
    });
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`embedded PostgreSQL exited with ${code}: ${output}`));
    });
  });
  return onServer(adminUrl, () => stopChild(child));
}

function onServer(adminUrl: string, stop: () => Promise<void>): Postgres {
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    adminUrl,
    async createDatabase() {
      const name = `spillway_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
      await admin(`CREATE DATABASE ${name}`);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async dropDatabase(url) {
      const name = new URL(url).pathname.slice(1);
      if (!/^spillway_[0-9a-f]{16}$/.test(name)) throw new Error(`not a test database: ${name}`);
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    stop,
  };
}

let shared: { postgres: Promise<Postgres>; users: number } | undefined;

/**
 * A new database for one Spillway under test (SPILLWAY_METADATA_URL), on a server the test
 * file's users share; the server stops when the last of them releases its database.
 */
export async function postgresDatabaseForTest(): Promise<{ url: string; release(): Promise<void> }> {
  shared ??= { postgres: usePostgres(), users: 0 };
  const entry = shared;
  entry.users++;
  const leave = async () => {
    if (--entry.users > 0) return;
    if (shared === entry) shared = undefined;
    await (await entry.postgres.catch(() => undefined))?.stop();
  };
  try {
    const postgres = await entry.postgres;
    const url = await postgres.createDatabase();
    return {
      url,
      async release() {
        await postgres.dropDatabase(url).catch(() => undefined);
        await leave();
      },
    };
  } catch (err) {
    await leave();
    throw err;
  }
}
