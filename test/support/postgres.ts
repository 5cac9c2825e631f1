import { usePostgres, type Postgres } from "../../tools/postgres/postgres-server.js";

export { usePostgres, type Postgres } from "../../tools/postgres/postgres-server.js";

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
