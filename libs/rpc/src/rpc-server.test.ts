import { connect, type ClientHttp2Session } from "node:http2";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openGuard } from "./call-guard.test-support.js";
import { RpcServer } from "./rpc-server.js";

let server: RpcServer;
let port: number;

beforeAll(async () => {
  server = new RpcServer({ internalKey: "test-key", guard: openGuard() });
  port = await server.listen("127.0.0.1:0");
});

afterAll(async () => {
  await server.stop();
});

async function settle<T>(session: ClientHttp2Session, read: () => T): Promise<T> {
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("error", reject);
  });
  // The server sends its connection-level WINDOW_UPDATE as the session opens; frames arrive
  // in order, so once our PING is acknowledged, that update has been applied.
  await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
  return read();
}

// Without the patch to grpc-js (patches/), the server keeps HTTP/2's 64 KiB windows and
// large Ingest payloads crawl through WINDOW_UPDATE round trips.
it("lets a client send 16 MiB before waiting for the server, per stream and per connection", async () => {
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    const { streamWindow, connectionWindow } = await settle(session, () => ({
      streamWindow: session.remoteSettings.initialWindowSize,
      connectionWindow: session.state.remoteWindowSize,
    }));
    expect(streamWindow).toBe(16 * 1024 * 1024);
    expect(connectionWindow).toBe(16 * 1024 * 1024);
  } finally {
    session.close();
  }
});
