import { afterAll, beforeAll, expect, it } from "vitest";
import { QueryService } from "@spillway/proto";
import { waitFor } from "../../../test/support/free-port.js";
import { createGrpcClient } from "./grpc-client.js";
import { createLocalClient } from "./local-client.js";
import { everyoneMayCall, openGuard } from "./call-guard.test-support.js";
import { RpcServer } from "./rpc-server.js";
import type { CallContext } from "./service-impl.js";

interface Seen {
  pieces: string[];
  ending: string;
  /** Whether the call was cancelled before the handler answered. */
  cancelledBeforeAnswer: boolean;
}

// A QueryService whose IngestStream only reports what it was sent and how the stream ended.
// Table "Refuse" fails before reading; table "Linger" waits (up to 2 s) after the stream
// ends for a cancel to arrive, as grpc-js may report a cancel as the end first.
const seen: Seen[] = [];
const service = {
  // Every other RPC is not part of this test.
  ...Object.fromEntries(QueryService.methods.map((m) => [m.localName, unused])),
  async ingestStream(requests: AsyncIterable<{ table: string; payload: Uint8Array }>, ctx: CallContext) {
    const record: Seen = { pieces: [], ending: "open", cancelledBeforeAnswer: false };
    seen.push(record);
    let table = "";
    try {
      for await (const r of requests) {
        table ||= r.table;
        if (table === "Refuse") throw new Error("refused before reading on");
        record.pieces.push(r.table + Buffer.from(r.payload).toString());
      }
      record.ending = "ended";
    } catch (err) {
      record.ending = `failed: ${(err as Error).message}`;
      throw err;
    }
    if (table === "Linger") await until(() => ctx.signal.aborted, 2000).catch(() => {});
    record.cancelledBeforeAnswer = ctx.signal.aborted;
    return { extentId: "e", rowCount: BigInt(record.pieces.length), cursor: "" };
  },
};
function unused(): never {
  throw new Error("not part of this test");
}

/** Waits (up to `timeoutMs`) until `done()` holds. */
const until = (done: () => boolean, timeoutMs = 5000) => waitFor("the condition", async () => (done() ? true : undefined), timeoutMs);

let server: RpcServer;
let client: ReturnType<typeof createGrpcClient<typeof QueryService>>;

beforeAll(async () => {
  server = new RpcServer({ internalKey: "test-key", guard: openGuard() });
  server.addService(QueryService, service, everyoneMayCall(QueryService));
  client = createGrpcClient(QueryService, `127.0.0.1:${await server.listen("127.0.0.1:0")}`);
});

afterAll(async () => {
  client.close();
  await server.stop();
});

const clients = [
  ["over gRPC", () => client],
  ["in process", () => createLocalClient(QueryService, service)],
] as const;

it.each(clients)("delivers a client stream's messages in order and answers once (%s)", async (_, clientOf) => {
  const response = await clientOf().ingestStream([{ table: "T", payload: Buffer.from("a") }, { payload: Buffer.from("b") }, { payload: Buffer.from("c") }]);
  expect(response.rowCount).toBe(3n);
  expect(seen.at(-1)).toEqual({ pieces: ["Ta", "b", "c"], ending: "ended", cancelledBeforeAnswer: false });
});

it.each(clients)("takes each message before the next is read, so a source may reuse its buffer (%s)", async (_, clientOf) => {
  const buffer = Buffer.alloc(64 * 1024);
  async function* reused() {
    for (const letter of ["a", "b", "c", "d"]) {
      buffer.fill(letter);
      yield { table: letter === "a" ? "T" : "", payload: buffer };
    }
  }
  await clientOf().ingestStream(reused());
  expect(seen.at(-1)!.pieces.map((p) => `${p.slice(0, 2)}…${p.length}`)).toEqual([`Ta…${64 * 1024 + 1}`, `bb…${64 * 1024}`, `cc…${64 * 1024}`, `dd…${64 * 1024}`]);
});

it("cancels the call, before the handler answers, when the client's source fails mid-way", async () => {
  const before = seen.length;
  async function* source() {
    yield { table: "Linger", payload: Buffer.from("a") };
    await until(() => seen.length > before && seen.at(-1)!.pieces.length === 1);
    throw new Error("source broke");
  }
  await expect(client.ingestStream(source())).rejects.toThrow("source broke");
  await until(() => seen.at(-1)!.ending !== "open");
  await new Promise((r) => setTimeout(r, 100));
  expect(seen.at(-1)).toMatchObject({ pieces: ["Lingera"], cancelledBeforeAnswer: true });
});

// An endless source of 64 KiB pieces: over gRPC the client sends until the server's answer
// arrives, no more than HTTP/2 flow control lets through (16 MiB window), then stops.
it.each(clients)("closes the client's source when the handler fails before reading it all (%s)", async (_, clientOf) => {
  let closed = false;
  let pulled = 0;
  const piece = Buffer.alloc(64 * 1024, 120);
  async function* source() {
    try {
      for (;;) {
        pulled++;
        yield { table: pulled === 1 ? "Refuse" : "", payload: piece };
      }
    } finally {
      closed = true;
    }
  }
  await expect(clientOf().ingestStream(source())).rejects.toThrow(/refused before reading on/);
  await until(() => closed);
  expect(pulled * piece.length).toBeLessThan(64 * 1024 * 1024);
});

it("streams a payload far larger than the 16 MiB window", async () => {
  const piece = Buffer.alloc(1024 * 1024, 120);
  const response = await client.ingestStream(Array.from({ length: 40 }, (_, i) => (i === 0 ? { table: "T", payload: piece } : { payload: piece })));
  expect(response.rowCount).toBe(40n);
  expect(seen.at(-1)!.pieces.join("").length).toBe(40 * 1024 * 1024 + 1);
});
