import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSandboxedInstance } from "./sandbox.js";
import { quoteLiteral } from "./sql-text.js";

// The query service runs user SQL on these instances; services/query/src/sql-guard.ts
// screens that SQL first, but the lock-down must hold on its own when the guard misses
// something. So every statement here goes straight to a connection, no guard in between.

let root: string;
let allowed: string;
let alsoAllowed: string;
/** Beside `allowed`, sharing its name as a prefix: a sandbox by string prefix would let it in. */
let sibling: string;
let outside: string;
let instance: DuckDBInstance;
let db: DuckDBConnection;

const OUTSIDE_TEXT = "Secret\nnot for the sandbox\n";

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "spillway-sandbox-"));
  allowed = join(root, "allowed");
  alsoAllowed = join(root, "also");
  sibling = join(root, "allowed-not");
  outside = mkdtempSync(join(tmpdir(), "spillway-outside-"));
  mkdirSync(sibling);
  for (const dir of [outside, sibling]) writeFileSync(join(dir, "secret.csv"), OUTSIDE_TEXT);
  instance = await openSandboxedInstance([allowed, alsoAllowed], join(root, "tmp"));
  db = await instance.connect();
});

afterAll(() => {
  db?.closeSync();
  instance?.closeSync();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}

/** The message a statement that must fail fails with; one that runs fails the test. */
async function refusalOf(sql: string): Promise<string> {
  const outcome = await db.run(sql).then(
    () => undefined,
    (e: unknown) => (e instanceof Error ? e.message : String(e)),
  );
  if (outcome === undefined) throw new Error(`the sandbox ran: ${sql}`);
  return outcome;
}

// DuckDB's own wording for a path outside allowed_directories; a refusal for any other
// reason (a typo, a missing file) would make these tests pass without testing anything.
const FILE_REFUSED = /Permission Error: Cannot access (file|directory) .* file system operations are disabled by configuration/;
const LOCKED = /Cannot change configuration option .* the configuration has been locked/;

describe("inside the allowed directories", () => {
  it("writes, reads back and attaches files, in each allowed directory", async () => {
    for (const dir of [allowed, alsoAllowed]) {
      const file = join(dir, "numbers.csv");
      await db.run(`COPY (SELECT range AS n FROM range(3)) TO ${quoteLiteral(file)} (HEADER)`);
      expect(readFileSync(file, "utf8")).toBe("n\n0\n1\n2\n");
      expect(await rows(`SELECT sum(n)::INTEGER AS s FROM read_csv(${quoteLiteral(file)})`)).toEqual([{ s: 3 }]);
      expect(await rows(`SELECT content FROM read_text(${quoteLiteral(file)})`)).toEqual([{ content: "n\n0\n1\n2\n" }]);
    }
    await db.run(`ATTACH ${quoteLiteral(join(allowed, "inside.duckdb"))} AS inside`);
    await db.run("CREATE TABLE inside.t AS SELECT 42 AS answer");
    expect(await rows("SELECT answer FROM inside.t")).toEqual([{ answer: 42 }]);
    await db.run("DETACH inside");
    expect(existsSync(join(allowed, "inside.duckdb"))).toBe(true);
  });
});

describe("outside the allowed directories", () => {
  // Written as text, not path.join, which would fold the `..` away before DuckDB sees it.
  const secretFiles = () => ["/etc/passwd", join(outside, "secret.csv"), join(sibling, "secret.csv"), `${allowed}/../../..${outside}/secret.csv`];

  it.each([
    ["read_csv", (f: string) => `SELECT * FROM read_csv(${quoteLiteral(f)})`],
    ["read_text", (f: string) => `SELECT * FROM read_text(${quoteLiteral(f)})`],
    ["read_blob", (f: string) => `SELECT * FROM read_blob(${quoteLiteral(f)})`],
  ])("refuses to read a file with %s", async (_, sql) => {
    for (const file of secretFiles()) expect(await refusalOf(sql(file))).toMatch(FILE_REFUSED);
  });

  it("refuses to read a file named as a table", async () => {
    // DuckDB takes a quoted name as a file only when it ends like a known format.
    for (const file of secretFiles().filter((f) => f.endsWith(".csv"))) expect(await refusalOf(`SELECT * FROM ${quoteLiteral(file)}`)).toMatch(FILE_REFUSED);
  });

  it("refuses to follow a symbolic link from an allowed directory to a file outside", async () => {
    const link = join(allowed, "link.csv");
    symlinkSync(join(outside, "secret.csv"), link);
    expect(await refusalOf(`SELECT * FROM read_text(${quoteLiteral(link)})`)).toMatch(FILE_REFUSED);
  });

  it("refuses to list files outside", async () => {
    expect(await refusalOf(`SELECT * FROM glob(${quoteLiteral(join(outside, "*"))})`)).toMatch(FILE_REFUSED);
  });

  it("refuses to write a file outside, with COPY TO or EXPORT DATABASE", async () => {
    const target = join(outside, "written.csv");
    expect(await refusalOf(`COPY (SELECT 1 AS a) TO ${quoteLiteral(target)}`)).toMatch(FILE_REFUSED);
    expect(await refusalOf(`EXPORT DATABASE ${quoteLiteral(join(outside, "export"))}`)).toMatch(FILE_REFUSED);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(outside, "export"))).toBe(false);
  });

  it("refuses to attach a database file outside", async () => {
    expect(await refusalOf(`ATTACH ${quoteLiteral(join(outside, "other.duckdb"))} AS other`)).toMatch(FILE_REFUSED);
    expect(existsSync(join(outside, "other.duckdb"))).toBe(false);
  });

  it("refuses URLs", async () => {
    expect(await refusalOf("SELECT * FROM read_csv('http://127.0.0.1:9/data.csv')")).toMatch(FILE_REFUSED);
  });
});

describe("extensions", () => {
  it("refuses to install or load one", async () => {
    expect(await refusalOf("INSTALL httpfs")).toMatch(/Permission Error/);
    expect(await refusalOf("LOAD httpfs")).toMatch(/Loading external extensions is disabled/);
    expect(await refusalOf(`LOAD ${quoteLiteral(join(allowed, "evil.duckdb_extension"))}`)).toMatch(/Loading external extensions is disabled/);
  });
});

describe("the configuration", () => {
  const settings = async () =>
    rows(
      "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', 'allowed_directories', 'allowed_paths', 'autoload_known_extensions', 'autoinstall_known_extensions', 'temp_directory', 'memory_limit', 'threads') ORDER BY name",
    );

  it("is what the sandbox promises", async () => {
    const byName = Object.fromEntries((await settings()).map((r) => [r.name, r.value]));
    expect(byName).toMatchObject({
      enable_external_access: "false",
      lock_configuration: "true",
      autoload_known_extensions: "false",
      autoinstall_known_extensions: "false",
      temp_directory: join(root, "tmp"),
    });
  });

  it.each([
    "SET enable_external_access = true",
    "SET GLOBAL enable_external_access = true",
    "PRAGMA enable_external_access = true",
    "SET allowed_directories = ['/']",
    "SET allowed_paths = ['/etc/passwd']",
    "SET autoload_known_extensions = true",
    "SET autoinstall_known_extensions = true",
    "SET temp_directory = '/tmp'",
    // DuckDB itself refuses to reopen external access once closed; the lock is what keeps
    // user SQL from the rest, such as the memory the process may take.
    "SET memory_limit = '100TB'",
    "SET threads = 256",
    "RESET enable_external_access",
    "RESET allowed_directories",
    "RESET lock_configuration",
    "SET lock_configuration = false",
    "SET GLOBAL lock_configuration = false",
  ])("cannot be undone: %s", async (statement) => {
    const before = await settings();
    expect(await refusalOf(statement)).toMatch(LOCKED);
    expect(await settings()).toEqual(before);
    expect(await refusalOf(`SELECT * FROM read_text(${quoteLiteral(join(outside, "secret.csv"))})`)).toMatch(FILE_REFUSED);
  });

  it("holds on every new connection of the instance", async () => {
    const other = await instance.connect();
    try {
      const error = await other.run(`SELECT * FROM read_text(${quoteLiteral(join(outside, "secret.csv"))})`).then(
        () => "",
        (e: unknown) => String(e),
      );
      expect(error).toMatch(FILE_REFUSED);
    } finally {
      other.closeSync();
    }
  });
});

describe("an instance without the cache of files", () => {
  it("keeps nothing of the files it reads in memory, where one with it keeps their blocks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "spillway-file-cache-"));
    const cached = async (instance: DuckDBInstance) => {
      const c = await instance.connect();
      try {
        for (let i = 0; i < 5; i++) {
          const file = quoteLiteral(join(dir, `f${i}.parquet`));
          await c.run(`COPY (SELECT range AS id FROM range(1000)) TO ${file} (FORMAT parquet)`);
          await c.run(`SELECT sum(id) FROM read_parquet(${file})`);
        }
        const rows = (await c.runAndReadAll("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'EXTERNAL_FILE_CACHE'")).getRows();
        return BigInt(rows[0]![0] as bigint);
      } finally {
        c.closeSync();
        instance.closeSync();
      }
    };
    try {
      expect(await cached(await openSandboxedInstance([dir], join(dir, "tmp")))).toBeGreaterThan(0n);
      expect(await cached(await openSandboxedInstance([dir], join(dir, "tmp"), { externalFileCache: false }))).toBe(0n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
