import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CursorService } from "@spillway/proto";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { everyoneMayCall, openGuard } from "./call-guard.test-support.js";
import { createGrpcClient } from "./grpc-client.js";
import { createLocalClient } from "./local-client.js";
import { RpcServer } from "./rpc-server.js";

// A CursorService whose CommitExtent fails as its table says, and which keeps the request it got.
const received: Array<{ table: string }> = [];
const service = {
  async commitExtent(request: { table: string; path: string }) {
    received.push(request);
    request.table = "changed by the handler";
    if (request.path === "domain") throw new SpillwayError(ErrorCode.notFound, "no table at https://a.blob.core.windows.net/c?sv=1&sig=SECRET");
    if (request.path === "bug") throw new TypeError("cannot read properties of undefined");
    return { cursor: "42" };
  },
};
const unused = new Proxy(service, { get: (target, name) => (target as Record<string | symbol, unknown>)[name] ?? (async () => ({})) });

describe("in-process calls behave as gRPC calls do", () => {
  let server: RpcServer;
  let remote: ReturnType<typeof createGrpcClient<typeof CursorService>>;
  beforeAll(async () => {
    server = new RpcServer({ internalKey: "k", guard: openGuard() });
    server.addService(CursorService, unused, everyoneMayCall(CursorService));
    remote = createGrpcClient(CursorService, `127.0.0.1:${await server.listen("127.0.0.1:0")}`);
  });
  afterAll(async () => {
    remote.close();
    await server.stop();
  });

  const clients = [
    ["over gRPC", () => remote],
    ["in process", () => createLocalClient(CursorService, unused)],
  ] as const;

  it.each(clients)("%s: the handler gets its own copy of the request", async (_, client) => {
    const request = { table: "Events", path: "ok" };
    expect((await client().commitExtent(request)).cursor).toBe("42");
    expect(request.table).toBe("Events");
    expect(received.at(-1)).not.toBe(request);
  });

  it.each(clients)("%s: a domain error keeps its code, with secrets redacted; anything else is INTERNAL", async (_, client) => {
    const domain = await client().commitExtent({ table: "T", path: "domain" }).catch((e: unknown) => e);
    expect(domain).toMatchObject({ code: ErrorCode.notFound, message: "no table at https://a.blob.core.windows.net/c?sv=1&sig=*******" });
    expect(domain).toBeInstanceOf(SpillwayError);
    const bug = await client().commitExtent({ table: "T", path: "bug" }).catch((e: unknown) => e);
    expect(bug).toMatchObject({ code: ErrorCode.internal, message: "internal error: cannot read properties of undefined" });
    expect(bug).not.toBeInstanceOf(TypeError);
  });
});
