import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { QueryDescriber } from "./query-description.js";
import { isRowWise, queryShape } from "./query-shape.js";
import { quoteLiteral } from "./sql-text.js";

describe("isRowWise: may a run of this query be split by cursor range over nodes", () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  let describer: QueryDescriber;
  let aggregates: ReadonlySet<string>;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(":memory:");
    connection = await instance.connect();
    describer = await QueryDescriber.open();
    aggregates = await describer.aggregates();
  });
  afterAll(async () => {
    connection.closeSync();
    instance.closeSync();
    await describer.close();
  });

  const rowWise = async (sql: string, facts = ["Events"]) => {
    const tree = JSON.parse(String((await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteLiteral(sql)}) AS t`)).getRowObjects()[0]!.t));
    return isRowWise(queryShape(tree.statements[0]), facts, aggregates);
  };

  it("knows DuckDB's aggregates by name", () => {
    for (const name of ["sum", "count", "avg", "min", "arg_max", "string_agg", "list"]) expect(aggregates.has(name), name).toBe(true);
    expect(aggregates.has("upper")).toBe(false);
  });

  it("splits filters, projections, scalar functions, joins with dimensions and UNION ALL of fact tables", async () => {
    for (const sql of [
      "SELECT * FROM Events",
      "SELECT Id, upper(Key) AS K, Value * 2 AS V FROM Events WHERE Value > 1 AND Key LIKE 'a%'",
      "SELECT e.Id, k.Label FROM Events e JOIN Keys k ON e.Key = k.Key",
      "SELECT e.Id, k.Label, r.Region FROM Events e LEFT JOIN Keys k ON e.Key = k.Key JOIN Regions r ON k.R = r.R",
      "SELECT 'e' AS S, Id FROM Events UNION ALL SELECT 'c' AS S, Id FROM Clicks",
      "SELECT CASE WHEN Id % 2 = 0 THEN 'even' ELSE 'odd' END AS P, Id FROM Events",
    ]) {
      expect(await rowWise(sql, ["Events", "Clicks"]), sql).toBe(true);
    }
  });

  it("keeps whole what combines rows: aggregates, windows, DISTINCT, ORDER BY, LIMIT, subqueries, CTEs, set operations", async () => {
    for (const sql of [
      "SELECT Key, count(*) FROM Events GROUP BY Key",
      "SELECT count(*) AS n FROM Events",
      "SELECT sum(Value) FROM Events",
      "SELECT Id, row_number() OVER (ORDER BY Id) FROM Events",
      "SELECT DISTINCT Key FROM Events",
      "SELECT Id FROM Events ORDER BY Id",
      "SELECT Id FROM Events LIMIT 10",
      "SELECT Id FROM Events WHERE Id IN (SELECT Id FROM Events WHERE Value > 1)",
      "SELECT Id FROM Events WHERE Value > (SELECT avg(Value) FROM Keys)",
      "WITH e AS (SELECT * FROM Events) SELECT Id FROM e",
      "SELECT Id FROM Events UNION SELECT Id FROM Clicks",
      "SELECT Id FROM Events EXCEPT SELECT Id FROM Clicks",
      "SELECT Id FROM Events UNION ALL SELECT Id FROM Clicks LIMIT 5",
      "SELECT Id FROM Events UNION ALL SELECT Id FROM Clicks ORDER BY Id",
      "SELECT Key, max(Id) FROM Events GROUP BY ALL",
      "SELECT Id FROM Events QUALIFY Id > 1",
    ]) {
      expect(await rowWise(sql, ["Events", "Clicks"]), sql).toBe(false);
    }
  });

  it("keeps whole what would repeat or lose rows in parts: outer sides, samples, dimension-only branches", async () => {
    for (const [sql, expected] of [
      ["SELECT e.Id FROM Events e LEFT JOIN Keys k ON e.Key = k.Key", true],
      ["SELECT k.Key, e.Id FROM Keys k LEFT JOIN Events e ON e.Key = k.Key", false],
      ["SELECT k.Key, e.Id FROM Keys k RIGHT JOIN Events e ON e.Key = k.Key", true],
      ["SELECT e.Id FROM Events e RIGHT JOIN Keys k ON e.Key = k.Key", false],
      ["SELECT k.Key FROM Keys k FULL JOIN Events e ON e.Key = k.Key", false],
      ["SELECT e.Id FROM Events e SEMI JOIN Keys k ON e.Key = k.Key", true],
      ["SELECT e.Id FROM Events e ANTI JOIN Keys k ON e.Key = k.Key", true],
      ["SELECT k.Key FROM Keys k SEMI JOIN Events e ON e.Key = k.Key", false],
      ["SELECT k.Key FROM Keys k ANTI JOIN Events e ON e.Key = k.Key", false],
      ["SELECT * FROM Events POSITIONAL JOIN Keys", false],
      ["SELECT e.Id FROM Events e ASOF JOIN Keys k ON e.Value >= k.Value", true],
      ["SELECT k.Key FROM Keys k ASOF JOIN Events e ON k.Value >= e.Value", false],
      ["SELECT Id FROM Events USING SAMPLE 10 ROWS", false],
      ["SELECT Id FROM Events TABLESAMPLE 10%", false],
      ["SELECT Id FROM Events UNION ALL SELECT 0 AS Id FROM Keys", false],
      ["SELECT Id FROM Events UNION ALL SELECT 0 AS Id", false],
      ["SELECT 1 AS Id", false],
      ["SELECT Id FROM (SELECT Id FROM Events WHERE Value > 0) AS e", true],
    ] as const) {
      expect(await rowWise(sql), sql).toBe(expected);
    }
  });

  it("keeps whole a join of two fact tables, or a fact table read twice", async () => {
    expect(await rowWise("SELECT e.Id FROM Events e JOIN Clicks c ON e.Id = c.Id", ["Events", "Clicks"])).toBe(false);
    expect(await rowWise("SELECT a.Id FROM Events a JOIN Events b ON a.Id = b.Id")).toBe(false);
    expect(await rowWise("SELECT Id FROM Events UNION ALL SELECT Id FROM Events")).toBe(false);
    expect(await rowWise("SELECT e.Id FROM Events e, Keys k WHERE e.Key = k.Key")).toBe(true);
    // Clicks is a dimension here: joined whole to each part of Events.
    expect(await rowWise("SELECT e.Id FROM Events e JOIN Clicks c ON e.Id = c.Id", ["Events"])).toBe(true);
  });
});
