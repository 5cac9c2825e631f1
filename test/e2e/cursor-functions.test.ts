import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csv, refusal } from "../support/fixtures.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "../support/spillway-processes.js";

// Cursor functions (SPEC §6a) against real processes and DuckDB: the seed's history recipe
// needs `cursor_before_or_at(StartCursor)`, in SQL and KQL alike.

describe.each<Mode>(["all", "split"])("cursor functions (%s)", (mode) => {
  let sw: SpillwayUnderTest;
  let lake: string;
  let startCursor: string;

  async function rows(query: string, queryLanguage = "sql"): Promise<{ columns: string[]; rows: unknown[][] }> {
    const out = { columns: [] as string[], rows: [] as unknown[][] };
    for await (const batch of sw.query.query({ query, queryLanguage })) {
      if (batch.columns.length) out.columns = batch.columns.map((c) => c.name);
      out.rows.push(...batch.rows.map((r) => toJson(ListValueSchema, r) as unknown[]));
    }
    return out;
  }

  beforeAll(async () => {
    lake = mkdtempSync(join(tmpdir(), "spillway-cursor-fns-"));
    sw = await startSpillwayProcesses(mode);
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.createTable({ name: "Plain", columns: [{ name: "Id", type: "long" }] });
    await sw.catalog.setIngestionTimePolicy({ table: "Plain", enabled: false });
    await sw.catalog.createExternalTable({ name: "Lake", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${lake}`] });
    // Three records before the export, two after.
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2]]) });
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[3]]) });
    const created = await sw.catalog.createOrAlterContinuousExport({ name: "Out", externalTable: "Lake", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: { seconds: 3600n } } });
    startCursor = created.export!.startCursor;
    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[4], [5]]) });
  });
  afterAll(async () => {
    await sw?.stop();
    rmSync(lake, { recursive: true, force: true });
  });

  it("splits a table at the export's start cursor: before or at it, and after it", async () => {
    expect(startCursor).toMatch(/^\d{18}$/);
    const before = await rows(`SELECT Id FROM Events WHERE cursor_before_or_at('${startCursor}') ORDER BY Id`);
    // Only the table's own columns come back, never the cursor the filter reads.
    expect(before).toEqual({ columns: ["Id"], rows: [["1"], ["2"], ["3"]] });
    expect((await rows(`SELECT * FROM Events WHERE cursor_after('${startCursor}') ORDER BY Id`)).rows).toEqual([["4"], ["5"]]);
    expect((await rows("SELECT count(*) AS n FROM Events WHERE cursor_after('')")).rows).toEqual([["5"]]);
    // The continuous export's first run starts after it: exactly the later records.
    const run = await sw.catalog.runContinuousExportNow({ name: "Out" });
    expect(run.artifacts.reduce((n, a) => n + a.numRecords, 0n)).toBe(2n);
  });

  it("does the same in KQL, with ingestion_time() and cursor_current()", async () => {
    expect((await rows(`Events | where cursor_before_or_at('${startCursor}') | count`, "kql")).rows).toEqual([["3"]]);
    expect((await rows(`Events | where cursor_after('${startCursor}') | order by Id asc | project Id`, "kql")).rows).toEqual([["4"], ["5"]]);
    const times = await rows("Events | extend t = ingestion_time() | summarize oldest = min(t), newest = max(t)", "kql");
    const [oldest, newest] = times.rows[0] as string[];
    expect(Date.parse(newest!)).toBeGreaterThanOrEqual(Date.parse(oldest!));
    expect(Date.now() - Date.parse(newest!)).toBeLessThan(10 * 60_000);
    const [[current]] = (await rows("print c = cursor_current()", "kql")).rows as string[][];
    expect(BigInt(current!)).toBeGreaterThan(BigInt(startCursor));
  });

  it("refuses a malformed cursor and a table without the IngestionTime policy, saying why", async () => {
    expect(await refusal(rows("SELECT * FROM Events WHERE cursor_after('last tuesday')"))).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("'last tuesday' is not a cursor") });
    expect(await refusal(rows("SELECT * FROM Plain WHERE cursor_after('1')"))).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("'Plain' has no IngestionTime policy") });
    // Two tables with cursors in one scope: which one's is meant is not guessed.
    expect(await refusal(rows("SELECT e.Id FROM Events e JOIN Events f ON e.Id = f.Id WHERE cursor_after('1')"))).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining("filter that table in a subquery first") });
    expect((await rows(`SELECT e.Id FROM (SELECT * FROM Events WHERE cursor_after('${startCursor}')) e JOIN Plain p ON e.Id = p.Id`)).rows).toEqual([]);
  });
});
