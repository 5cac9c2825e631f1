import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { quoteLiteral } from "./sql-text.js";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { checkQuery } from "./sql-guard.js";

// The guard judges DuckDB's own parse tree, so the trees come from a real DuckDB.
let instance: DuckDBInstance;
let connection: DuckDBConnection;

beforeAll(async () => {
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
});

afterAll(() => {
  connection.closeSync();
  instance.closeSync();
});

async function check(query: string): Promise<string[]> {
  const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteLiteral(query)}) AS tree`);
  return checkQuery(query, String(reader.getRowObjects()[0]!.tree)).tables;
}

/** The guard's refusal: an INVALID_ARGUMENT SpillwayError with exactly this message. */
async function refusal(query: string): Promise<string> {
  try {
    await check(query);
  } catch (err) {
    expect(err).toBeInstanceOf(SpillwayError);
    expect((err as SpillwayError).code).toBe(ErrorCode.invalidArgument);
    return (err as Error).message;
  }
  throw new Error(`query was accepted: ${query}`);
}

const ONLY_SELECT = "query refused: only a single read-only SELECT is allowed (no COPY, ATTACH, SET, INSTALL, CREATE, INSERT, PIVOT statements or the like): ";

describe("accepted queries", () => {
  it("returns the tables a plain SELECT reads", async () => {
    expect(await check("SELECT a, count(*) FROM Events WHERE a > 1 GROUP BY a")).toEqual(["Events"]);
    expect(await check("SELECT 1")).toEqual([]);
  });

  it("returns joined and subquery tables once each, case folded, in first-seen spelling", async () => {
    expect(await check("SELECT * FROM Events e JOIN users u ON e.id = u.id JOIN EVENTS x ON true WHERE e.id IN (SELECT id FROM Users)")).toEqual([
      "Events",
      "users",
    ]);
  });

  it("excludes CTE names, whatever their case", async () => {
    expect(await check("WITH recent AS (SELECT * FROM T) SELECT * FROM RECENT JOIN t USING (x) JOIN Other ON true JOIN other o ON true")).toEqual([
      "T",
      "Other",
    ]);
    expect(await check("WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM b")).toEqual([]);
  });

  it("accepts FROM-first syntax and a trailing semicolon", async () => {
    expect(await check("FROM t")).toEqual(["t"]);
    expect(await check("SELECT * FROM t;")).toEqual(["t"]);
  });

  it("returns a path literal in FROM as a table name, for the engine to refuse as unknown", async () => {
    expect(await check("SELECT * FROM 'file.parquet'")).toEqual(["file.parquet"]);
    expect(await check("SELECT * FROM '/etc/passwd' AS p")).toEqual(["/etc/passwd"]);
  });

  it("returns a quoted name with a dot as one unqualified name", async () => {
    expect(await check('SELECT * FROM "main.t"')).toEqual(["main.t"]);
  });

  it("does not let a CTE in a subquery hide a table read outside it", async () => {
    expect(await check(`SELECT * FROM '/data/extents/e.parquet', (WITH "/data/extents/e.parquet" AS (SELECT 1 AS z) SELECT z FROM "/data/extents/e.parquet") s`)).toEqual([
      "/data/extents/e.parquet",
    ]);
  });
});

describe("refused statements", () => {
  it.each([
    "COPY t TO '/tmp/out.csv'",
    "COPY (SELECT 1) TO '/tmp/out.csv' (FORMAT csv)",
    "ATTACH '/tmp/other.duckdb' AS other",
    "SET threads = 1",
    "INSTALL httpfs",
    "CREATE TABLE x (a INTEGER)",
    "INSERT INTO t VALUES (1)",
    "EXPLAIN SELECT 1",
  ])("%s", async (query) => {
    expect(await refusal(query)).toBe(ONLY_SELECT + query);
  });

  it("shortens a long refused statement to its first 60 characters", async () => {
    const query = `CREATE TABLE x AS SELECT ${"1 AS c, ".repeat(20)}2 AS d`;
    expect(await refusal(query)).toBe(`${ONLY_SELECT}${query.slice(0, 60)}…`);
  });

  it("refuses more than one statement, and none", async () => {
    expect(await refusal("SELECT 1; SELECT 2")).toBe("query refused: exactly one SELECT statement is allowed, found 2");
    expect(await refusal("")).toBe("query refused: exactly one SELECT statement is allowed, found 0");
  });

  it("reports a syntax error as not parsing", async () => {
    expect(await refusal("SELEC 1")).toBe('query does not parse: syntax error at or near "SELEC"');
  });
});

describe("refused reads", () => {
  const tableFunction = (fn: string) => `query refused: table function '${fn}' is not allowed; read tables by name only`;

  it("refuses table functions in FROM", async () => {
    expect(await refusal("SELECT * FROM read_csv('/etc/passwd')")).toBe(tableFunction("read_csv"));
    expect(await refusal("SELECT * FROM glob('/*')")).toBe(tableFunction("glob"));
  });

  it("refuses table functions nested in a scalar subquery, IN list or CTE", async () => {
    expect(await refusal("SELECT (SELECT count(*) FROM read_csv('/etc/passwd')) AS n")).toBe(tableFunction("read_csv"));
    expect(await refusal("SELECT 1 FROM t WHERE x IN (SELECT * FROM read_parquet('/a.parquet'))")).toBe(tableFunction("read_parquet"));
    expect(await refusal("WITH c AS (SELECT * FROM read_text('/etc/hosts')) SELECT * FROM c")).toBe(tableFunction("read_text"));
  });

  it("refuses qualified table names", async () => {
    expect(await refusal("SELECT * FROM main.t")).toBe("query refused: 'main.t' is qualified; name tables of this database only");
    expect(await refusal("SELECT * FROM a.b.c")).toBe("query refused: 'a.b.c' is qualified; name tables of this database only");
  });

  it("refuses time travel", async () => {
    expect(await refusal("SELECT * FROM t AT (VERSION => 1)")).toBe("query refused: AT (time travel) clauses are not supported");
  });

  it("refuses functions that reveal configuration or environment, in any case or schema", async () => {
    expect(await refusal("SELECT current_setting('threads')")).toBe("query refused: function 'current_setting' is not allowed");
    expect(await refusal("SELECT x FROM t WHERE x = CURRENT_SETTING('TimeZone')")).toBe("query refused: function 'current_setting' is not allowed");
    expect(await refusal("SELECT main.getenv('HOME')")).toBe("query refused: function 'getenv' is not allowed");
  });
});
