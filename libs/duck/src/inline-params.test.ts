import { expect, it } from "vitest";
import { DuckDBTimestampValue } from "@duckdb/node-api";
import { inlineParams } from "./inline-params.js";

it("writes each parameter in as a literal of the type it is bound as, skipping quoted text", () => {
  expect(inlineParams("UPDATE t SET n = $2, note = 'keep $1' WHERE k = $1", ["it's", 5n])).toBe("UPDATE t SET n = CAST(5 AS BIGINT), note = 'keep $1' WHERE k = 'it''s'");
  expect(inlineParams("SELECT $1, $2, $3, $4", [7, 0.5, true, null])).toBe("SELECT CAST(7 AS INTEGER), CAST('0.5' AS DOUBLE), true, NULL");
  expect(inlineParams("SELECT $1", [new DuckDBTimestampValue(1_764_672_021_387_123n)])).toBe("SELECT TIMESTAMP '2025-12-02 10:40:21.387123'");
  expect(inlineParams("SELECT 1", [])).toBe("SELECT 1");
});

it("leaves to binding what it cannot write in exactly or tell apart from a parameter", () => {
  for (const sql of ["SELECT $1 -- c", "SELECT /* $1 */ $1", 'SELECT "k" FROM t WHERE k = $1', "SELECT $$x$$, $1", "SELECT $tag$x$tag$, $1", "SELECT col$1 FROM t WHERE k = $1", "SELECT E'\\n', $1"]) {
    expect(inlineParams(sql, ["a"]), sql).toBeUndefined();
  }
  expect(inlineParams("SELECT $1, $2", ["a"])).toBeUndefined();
  expect(inlineParams("SELECT $1", ["nul\0"])).toBeUndefined();
  expect(inlineParams("SELECT $1", [2n ** 63n])).toBeUndefined();
  expect(inlineParams("SELECT $1", [new DuckDBTimestampValue(253_402_300_800_000_000n)])).toBeUndefined();
});
