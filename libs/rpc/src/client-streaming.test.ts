import { afterAll, beforeAll, expect, it } from "vitest";
import { QueryService } from "@spillway/proto";
import { createGrpcClient } from "./grpc-client.js";
import { createLocalClient } from "./local-client.js";
import { RpcServer } from "./rpc-server.js";
import type { CallContext } from "./service-impl.js";

// A QueryService whose IngestStream only reports what it was sent and how the stream ended.
const seen: Array<{ pieces: string[]; ending: string; cancelled: boolean }> = [];
const service = {
  async ingestStream(requests: AsyncIterable<{ table: string; payload: Uint8Array }>, ctx: CallContext) {
    const pieces: string[] = [];
    const record = { pieces, ending: "open", cancelled: false };
    ctx.signal.addEventListener("abort", () => (record.cancelled = true));
    seen.push(record);
    try {
      for await (const r of requests) pieces.push(r.table + Buffer.from(r.payload).toString());
      record.ending = "ended";
    } catch (err) {
      record.ending = `failed: ${(err as Error).message}`;
      throw err;
    }
    return { extentId: "e", rowCount: BigInt(pieces.length), cursor: "" };
  },
  ingest: unused,
  query: unused,
  describeQuery: unused,
  executeToSpool: unused,
};
function unused(): never {
  throw new Error("not part of this test");
}

let server: RpcServer;
let client: ReturnType<typeof createGrpcClient<typeof QueryService>>;

beforeAll(async () => {
  server = new RpcServer({ internalKey: "test-key" });
  server.addService(QueryService, service);
  client = createGrpcClient(QueryService, `127.0.0.1:${await server.listen("127.0.0.1:0")}`);
});

afterAll(async () => {
  client.close();
  await server.stop();
});

const waitUntil = async (done: () => boolean) => {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
};

it.each([
  ["over gRPC", () => client],
  ["in process", () => createLocalClient(QueryService, service)],
])("delivers a client stream's messages in order and answers once (%s)", async (_, clientOf) => {
  const response = await clientOf().ingestStream([{ table: "T", payload: Buffer.from("a") }, { payload: Buffer.from("b") }, { payload: Buffer.from("c") }]);
  expect(response.rowCount).toBe(3n);
  expect(seen.at(-1)).toMatchObject({ pieces: ["Ta", "b", "c"], ending: "ended" });
});

// The handler learns of the cancel, but may first see its stream end (grpc/grpc-node#2583):
// which of the two it sees first is up to grpc-js, so only the cancel is asserted.
it("cancels the call, and the handler learns of it, when the client's source fails mid-way", async () => {
  const before = seen.length;
  async function* source() {
    yield { table: "T", payload: Buffer.from("a") };
    await waitUntil(() => seen.length > before && seen.at(-1)!.pieces.length === 1);
    throw new Error("source broke");
  }
  await expect(client.ingestStream(source())).rejects.toThrow("source broke");
  await waitUntil(() => seen.at(-1)!.cancelled);
  expect(seen.at(-1)!.pieces).toEqual(["Ta"]);
  expect(seen.at(-1)!.cancelled).toBe(true);
});

it("streams a payload far larger than the 16 MiB window in pieces, waiting for the transport to drain", async () => {
  const piece = Buffer.alloc(1024 * 1024, 120);
  const response = await client.ingestStream(Array.from({ length: 40 }, (_, i) => (i === 0 ? { table: "T", payload: piece } : { payload: piece })));
  expect(response.rowCount).toBe(40n);
  expect(seen.at(-1)!.pieces.join("").length).toBe(40 * 1024 * 1024 + 1);
});
