import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import type { KustoJson } from "@spillway/kql";
import { ExecuteResponseSchema } from "@spillway/proto";
import { compareRows, type ConformanceCase } from "../libs/kql/src/conformance/case-runner.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "./support/spillway-processes.js";

// Kusto's own answers (issue #13): every case of the shared corpus through
// KustoService/Execute of a running Spillway, its input tables made with CreateTable and
// ingested as JSON lines, each case in a database of its own. A case Spillway does not
// translate must be refused with the parser's or the translator's error, never answered
// differently from Kusto.

// CI puts a copy of the project's shared folder beside the repository.
const corpusPath = fileURLToPath(new URL("../../shared/conformance/kql/corpus.json", import.meta.url));
const present = existsSync(corpusPath);

// In CI the corpus must be there: a run without it would pass without having checked anything.
const required = process.env.CI === "true";

/** How a KqlError reads on the wire: what the parser or translator refused, and where. */
const KQL_REFUSAL = /^(KS\d+|SPW-KQL-[A-Z-]+) at line \d+, column \d+: /;

type Outcome = { kind: "pass" } | { kind: "refused"; reason: string } | { kind: "wrong" | "broken"; reason: string };

// make_set and make_bag do not promise an element order (as libs/kql's case runner compares).
const unorderedArrays = (c: ConformanceCase) => /make_set|set_union|set_intersect|set_difference/.test(c.query);

describe.runIf(present)("KQL conformance through KustoService/Execute: Kusto's own answers (shared/conformance/kql/corpus.json)", () => {
  let sw: SpillwayUnderTest;
  beforeAll(async () => {
    sw = await startSpillwayProcesses("all");
  });
  afterAll(async () => {
    await sw?.stop();
  });

  async function runCase(c: ConformanceCase, database: string): Promise<Outcome> {
    for (const t of c.tables) {
      await sw.catalog.createTable({ database, name: t.name, columns: t.columns });
      if (!t.rows.length) continue;
      const lines = t.rows.map((row) => JSON.stringify(Object.fromEntries(t.columns.map((col, i) => [col.name, row[i] ?? null]))));
      await sw.query.ingest({ database, table: t.name, format: "json", payload: Buffer.from(lines.join("\n") + "\n") });
    }
    let columns: Array<{ name: string; type: string }> = [];
    const rows: KustoJson[][] = [];
    try {
      for await (const message of sw.kusto.execute({ database, text: c.query })) {
        const m = toJson(ExecuteResponseSchema, message) as { columns?: typeof columns; rows?: KustoJson[][] };
        columns = m.columns ?? [];
        rows.push(...(m.rows ?? []));
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof SpillwayError && err.code === ErrorCode.invalidArgument && KQL_REFUSAL.test(message)) return { kind: "refused", reason: message };
      // Anything else (DuckDB refusing the translation, an internal error) is a translator bug, not a refusal.
      return { kind: "broken", reason: message.split("\n")[0]! };
    }
    const expected = c.expected.columns.map((x) => [x.name, x.type]);
    if (JSON.stringify(columns.map((x) => [x.name, x.type])) !== JSON.stringify(expected)) {
      return { kind: "wrong", reason: `columns ${JSON.stringify(columns)} but Kusto gave ${JSON.stringify(c.expected.columns)}` };
    }
    const problem = compareRows(rows, c.expected.rows as KustoJson[][], c.expected.ordered, unorderedArrays(c));
    return problem ? { kind: "wrong", reason: problem } : { kind: "pass" };
  }

  it("answers every case as Kusto did, or refuses it with a clear error", async () => {
    const cases = JSON.parse(readFileSync(corpusPath, "utf8")) as ConformanceCase[];
    const byFamily = new Map<string, { pass: number; refused: number; wrong: number; broken: number }>();
    const failures: string[] = [];
    const refusals: string[] = [];
    for (const [i, c] of cases.entries()) {
      const outcome = await runCase(c, `kql_case_${i}`);
      const family = c.family ?? "other";
      const counts = byFamily.get(family) ?? { pass: 0, refused: 0, wrong: 0, broken: 0 };
      counts[outcome.kind]++;
      byFamily.set(family, counts);
      if (outcome.kind === "wrong" || outcome.kind === "broken") failures.push(`${c.id} [${outcome.kind}]: ${outcome.reason}\n    ${c.query.replaceAll("\n", "\n    ")}`);
      if (outcome.kind === "refused") refusals.push(`${c.id}: ${outcome.reason}`);
    }
    const lines = [...byFamily].sort().map(([f, n]) => `${f.padEnd(40)} pass ${n.pass}  refused ${n.refused}  wrong ${n.wrong}  broken ${n.broken}`);
    const total = [...byFamily.values()].reduce((t, n) => ({ pass: t.pass + n.pass, refused: t.refused + n.refused, all: t.all + n.pass + n.refused + n.wrong + n.broken }), { pass: 0, refused: 0, all: 0 });
    console.log(`KQL corpus through KustoService/Execute: ${total.pass} of ${total.all} pass, ${total.refused} refused\n${lines.join("\n")}`);
    if (process.env.KQL_CORPUS_VERBOSE) console.log(`refused:\n${refusals.join("\n")}`);
    expect(failures, failures.join("\n\n")).toEqual([]);
  }, 900_000);
});

describe.runIf(!present && required)("KQL conformance corpus in CI", () => {
  it("is beside the repository, as CI places shared/", () => {
    expect.fail(`${corpusPath} is absent: CI runs beside a copy of shared/, and the KQL conformance test needs its corpus`);
  });
});
