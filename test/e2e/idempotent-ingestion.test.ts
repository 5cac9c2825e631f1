import { toJson } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csv } from "../support/fixtures.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "../support/spillway-processes.js";

// Idempotent ingestion with Kusto's ingest-by tags (SPEC §6a): a client that retries after a
// lost answer ingests once.

describe.each<Mode>(["all", "split"])("ingest-by tags and ingestIfNotExists (%s)", (mode) => {
  let sw: SpillwayUnderTest;
  const count = async (table: string) => {
    for await (const batch of sw.query.query({ query: `SELECT count(*) AS n FROM ${table}` })) {
      if (batch.rows.length) return Number((toJson(ListValueSchema, batch.rows[0]!) as string[])[0]);
    }
    return -1;
  };

  beforeAll(async () => {
    sw = await startSpillwayProcesses(mode);
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
  });
  afterAll(async () => {
    await sw?.stop();
  });

  it("skips a retried ingestion, over Ingest and IngestStream alike, across a restart", async () => {
    const batch = { table: "Events", format: "csv", payload: csv([[1], [2], [3]]), ingestByTags: ["batch-1"], ingestIfNotExists: ["batch-1"] };
    const first = await sw.query.ingest(batch);
    expect(first).toMatchObject({ rowCount: 3n, skipped: false });
    expect(await sw.query.ingest(batch)).toMatchObject({ rowCount: 0n, skipped: true, extentId: "" });
    const streamed = await sw.query.ingestStream([{ table: "Events", format: "csv", ingestIfNotExists: ["batch-1"] }, { payload: csv([[1], [2], [3]]) }, { endOfPayload: true }]);
    expect(streamed).toMatchObject({ skipped: true, rowCount: 0n });
    // Only with the tag asked for: another batch goes in.
    expect(await sw.query.ingest({ ...batch, payload: csv([[4]]), ingestByTags: ["batch-2"], ingestIfNotExists: ["batch-2"] })).toMatchObject({ rowCount: 1n, skipped: false });
    expect(await count("Events")).toBe(4);

    // In Kusto's words too: .ingest inline with tags and ingestIfNotExists, twice.
    const inline = `.ingest inline into table Events with (tags='["ingest-by:k1"]', ingestIfNotExists='["k1"]') <| 9`;
    for (let i = 0; i < 2; i++) for await (const _ of sw.kusto.execute({ database: "default", text: inline })) void _;
    expect(await count("Events")).toBe(5);

    await sw.kill();
    await sw.start();
    expect(await sw.query.ingest(batch)).toMatchObject({ skipped: true });
    expect(await count("Events")).toBe(5);
  });

  it("commits one of two ingestions racing with the same tag", async () => {
    const racing = Array.from({ length: 4 }, (_, i) => sw.query.ingest({ table: "Events", format: "csv", payload: csv([[100 + i]]), ingestByTags: ["race"], ingestIfNotExists: ["race"] }));
    const answers = await Promise.all(racing);
    expect(answers.filter((a) => !a.skipped)).toHaveLength(1);
    expect(await count("Events")).toBe(6);
  });

  it("forgets the tags with the table's extents", async () => {
    await sw.catalog.createTable({ name: "Scratch", columns: [{ name: "Id", type: "long" }] });
    const batch = { table: "Scratch", format: "csv", payload: csv([[1]]), ingestByTags: ["once"], ingestIfNotExists: ["once"] };
    expect((await sw.query.ingest(batch)).skipped).toBe(false);
    await sw.catalog.dropTable({ name: "Scratch" });
    await sw.catalog.createTable({ name: "Scratch", columns: [{ name: "Id", type: "long" }] });
    expect((await sw.query.ingest(batch)).skipped).toBe(false);
    expect(await count("Scratch")).toBe(1);
  });
});
