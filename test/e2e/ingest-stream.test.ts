import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusal } from "../support/fixtures.js";
import { waitFor } from "../support/free-port.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "../support/spillway-processes.js";

const text = (s: string) => Buffer.from(s);

describe.each<Mode>(["all", "split", "nodes"])("IngestStream: one payload in many messages (%s)", (mode) => {
  let sw: SpillwayUnderTest;
  const rows = async (): Promise<string[]> => {
    const out: string[] = [];
    for await (const b of sw.query.query({ query: "SELECT Id, Key FROM Events ORDER BY Id" })) {
      for (const r of b.rows) out.push(r.values.map((v) => String(v.kind.value)).join(":"));
    }
    return out;
  };
  const scratchFiles = () => sw.dataDirs.flatMap((dir) => readdirSync(join(dir, "tmp", "ingest")));

  beforeAll(async () => {
    sw = await startSpillwayProcesses(mode, { SPILLWAY_MAX_INGEST_SIZE: "1MB", SPILLWAY_INGEST_IDLE_TIMEOUT: "2s" });
    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
  });
  afterAll(async () => {
    await sw?.stop();
  });

  it("ingests the pieces as one payload, even when a piece ends inside a line", async () => {
    const response = await sw.query.ingestStream([
      { table: "Events", format: "csv", ignoreFirstRecord: true },
      { payload: text("Id,Key\n1,al") },
      { payload: text("pha\n2,beta\n3") },
      { payload: text(",gamma\n"), endOfPayload: true },
    ]);
    expect(response.rowCount).toBe(3n);
    expect(response.cursor).not.toBe("");
    expect(await rows()).toEqual(["1:alpha", "2:beta", "3:gamma"]);
  });

  it("numbers lines across pieces when it refuses a payload, and ingests none of it", async () => {
    const before = await rows();
    const err = await refusal(sw.query.ingestStream([{ table: "Events", format: "csv", payload: text("10,a\n11,b\n") }, { payload: text("12,c\nthirteen,d\n"), endOfPayload: true }]));
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringMatching(/line 4, column 'Id'.*'thirteen'/) });
    expect(await rows()).toEqual(before);
  });

  it("refuses a stream that is empty, names an unknown table, redirects a later message, or does not mark its end", async () => {
    const before = await rows();
    expect(await refusal(sw.query.ingestStream([]))).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringMatching(/at least one message/) });
    expect(await refusal(sw.query.ingestStream([{ table: "Nope", format: "csv", payload: text("1,a\n"), endOfPayload: true }]))).toMatchObject({
      code: status.NOT_FOUND,
      message: expect.stringMatching(/table 'Nope' does not exist/),
    });
    const redirected = sw.query.ingestStream([{ table: "Events", format: "csv", payload: text("20,a\n") }, { table: "Other", payload: text("21,b\n"), endOfPayload: true }]);
    expect(await refusal(redirected)).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringMatching(/message 2 sets table; only the first message may/) });
    const unfinished = sw.query.ingestStream([{ table: "Events", format: "csv", payload: text("22,a\n") }, { payload: text("23,b\n") }]);
    expect(await refusal(unfinished)).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringMatching(/ended without a message setting end_of_payload/) });
    const overrun = sw.query.ingestStream([{ table: "Events", format: "csv", payload: text("24,a\n"), endOfPayload: true }, { payload: text("25,b\n") }]);
    expect(await refusal(overrun)).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringMatching(/message 2 follows the one that set end_of_payload/) });
    expect(await rows()).toEqual(before);
  });

  it("ingests nothing of a stream the client abandons, and leaves no scratch file", async () => {
    const before = await rows();
    let sent = 0;
    async function* failingSource() {
      yield { table: "Events", format: "csv", payload: text("30,a\n") };
      sent++;
      // The server has begun the payload's scratch file before the client gives up.
      await waitFor("the scratch file", async () => scratchFiles().length > 0 || undefined, 5000);
      throw new Error("the client's source failed");
    }
    expect((await refusal(sw.query.ingestStream(failingSource()))).message).toBe("the client's source failed");
    expect(sent).toBe(1);
    await waitFor("no scratch file", async () => scratchFiles().length === 0 || undefined, 5000);
    expect(await rows()).toEqual(before);
  });

  it("refuses a payload larger than the server takes, whole or in pieces, and keeps none of it", async () => {
    const before = await rows();
    const line = text("40,a\n");
    const lines = (n: number) => Buffer.concat(Array(n).fill(line));
    const pieces = Array.from({ length: 6 }, (_, i) => (i === 0 ? { table: "Events", format: "csv", payload: lines(50_000) } : { payload: lines(50_000), endOfPayload: i === 5 }));
    const limit = expect.stringMatching(/larger than the 1048576 bytes one call may ingest \(--max-ingest-size\); nothing was ingested/);
    expect(await refusal(sw.query.ingestStream(pieces))).toMatchObject({ code: status.RESOURCE_EXHAUSTED, message: limit });
    expect(await refusal(sw.query.ingest({ table: "Events", format: "csv", payload: lines(300_000) }))).toMatchObject({ code: status.RESOURCE_EXHAUSTED, message: limit });
    await waitFor("no scratch file", async () => scratchFiles().length === 0 || undefined, 5000);
    expect(await rows()).toEqual(before);
  });

  it("refuses a stream that goes quiet, rather than hold the call", async () => {
    const before = await rows();
    let resume = () => {};
    async function* stalling() {
      yield { table: "Events", format: "csv", payload: text("50,a\n") };
      await new Promise<void>((resolve) => (resume = resolve));
      yield { payload: text("51,b\n"), endOfPayload: true };
    }
    const started = Date.now();
    const err = await refusal(sw.query.ingestStream(stalling()));
    resume();
    expect(err).toMatchObject({ code: status.DEADLINE_EXCEEDED, message: expect.stringMatching(/received no message for 2 s; nothing was ingested/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    await waitFor("no scratch file", async () => scratchFiles().length === 0 || undefined, 5000);
    expect(await rows()).toEqual(before);
  });

  it("counts a gzip file named by reference as it unpacks, against the same limit: a small file that unpacks large is refused", async () => {
    const before = await rows();
    const folder = mkdtempSync(join(tmpdir(), "spillway-gzip-bomb-"));
    try {
      // About 2 MB of rows, a few kilobytes packed: under the 1 MB limit as sent, over it unpacked.
      const bomb = join(folder, "bomb.csv.gz");
      writeFileSync(bomb, gzipSync("30,x\n".repeat(400_000)));
      expect(statSync(bomb).size).toBeLessThan(64 * 1024);
      expect(await refusal(sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: [`file://${bomb}`] }))).toMatchObject({
        code: status.RESOURCE_EXHAUSTED,
        message: expect.stringMatching(/the files of the call, gzip unpacked, come to more than the 1048576 bytes one call may ingest \(--max-ingest-size\)/),
      });
      // A small one is read as before.
      const small = join(folder, "small.csv.gz");
      writeFileSync(small, gzipSync("31,y\n"));
      expect((await sw.query.ingestFromStorage({ table: "Events", format: "csv", uris: [`file://${small}`] })).rowCount).toBe(1n);
      expect(await rows()).toEqual([...before, "31:y"]);
      await waitFor("no scratch file", async () => scratchFiles().length === 0 || undefined, 5000);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
