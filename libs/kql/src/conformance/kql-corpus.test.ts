import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DuckDBConnection } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKqlEngine, type KqlEngine } from "../kql-engine.js";
import { openCaseDatabase, runCase, type ConformanceCase, type Outcome } from "./case-runner.js";

// CI puts a copy of the project's shared folder beside the repository.
const corpusPath = fileURLToPath(new URL("../../../../../shared/conformance/kql/corpus.json", import.meta.url));
const present = existsSync(corpusPath);

// In CI the corpus must be there: a run without it would pass without having checked anything.
const required = process.env.CI === "true";

describe.runIf(present)("KQL conformance: Kusto's own answers (shared/conformance/kql/corpus.json)", () => {
  let engine: KqlEngine;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    engine = createKqlEngine();
    connection = await openCaseDatabase();
  });
  afterAll(async () => {
    connection?.closeSync();
    await engine?.close();
  });

  it("answers every case as Kusto did, or refuses it with a clear error", async () => {
    const cases = JSON.parse(readFileSync(corpusPath, "utf8")) as ConformanceCase[];
    const byFamily = new Map<string, { pass: number; refused: number; wrong: number; broken: number }>();
    const failures: string[] = [];
    const refusals: string[] = [];
    for (const c of cases) {
      const outcome: Outcome = await runCase(engine, connection, c);
      const family = c.family ?? "other";
      const counts = byFamily.get(family) ?? { pass: 0, refused: 0, wrong: 0, broken: 0 };
      counts[outcome.kind]++;
      byFamily.set(family, counts);
      if (outcome.kind === "wrong" || outcome.kind === "broken") failures.push(`${c.id} [${outcome.kind}]: ${outcome.reason}\n    ${c.query.replaceAll("\n", "\n    ")}\n    SQL: ${outcome.sql ?? ""}`);
      if (outcome.kind === "refused") refusals.push(`${c.id}: ${outcome.reason}`);
    }
    const lines = [...byFamily].sort().map(([f, n]) => `${f.padEnd(40)} pass ${n.pass}  refused ${n.refused}  wrong ${n.wrong}  broken ${n.broken}`);
    const total = [...byFamily.values()].reduce((t, n) => ({ pass: t.pass + n.pass, refused: t.refused + n.refused, all: t.all + n.pass + n.refused + n.wrong + n.broken }), { pass: 0, refused: 0, all: 0 });
    console.log(`KQL corpus: ${total.pass} of ${total.all} pass, ${total.refused} refused\n${lines.join("\n")}`);
    if (process.env.KQL_CORPUS_VERBOSE) console.log(`refused:\n${refusals.join("\n")}`);
    expect(failures, failures.join("\n\n")).toEqual([]);
  }, 600_000);
});

describe.runIf(!present && required)("KQL conformance corpus in CI", () => {
  it("is beside the repository, as CI places shared/", () => {
    expect.fail(`${corpusPath} is absent: CI runs beside a copy of shared/, and the KQL conformance test needs its corpus`);
  });
});
