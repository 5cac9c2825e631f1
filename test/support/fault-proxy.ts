import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse, type IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { AZURITE_ACCOUNT, AZURITE_KEY } from "./azurite.js";

/**
 * What the proxy can do to a request instead of (or after) forwarding it.
 * - status500 / status503: answer with that status and an Azure-style XML error body.
 * - reset: destroy the connection without an answer.
 * - timeout: hold the request unanswered for `holdMs`, then destroy the connection.
 * - truncate: forward, then send the status line, headers and part of the body
 *   (or part of the headers when the body is empty) and destroy the connection.
 */
export type FaultKind = "status500" | "status503" | "reset" | "timeout" | "truncate";
export const FAULT_KINDS: readonly FaultKind[] = ["status500", "status503", "reset", "timeout", "truncate"];

/** before: Azurite never sees the request. after: Azurite applied it, the client sees a failure. */
export type FaultPhase = "before" | "after";

export interface FaultProxyOptions {
  /** Azurite's origin, e.g. http://127.0.0.1:10000 (a path after the origin is ignored). */
  target: string;
  /** Share of requests that get a fault, 0..1. Default 0.1. */
  rate?: number;
  /** Seed of the PRNG choosing which requests fail and how. Default 1. */
  seed?: number;
  /** Kinds to choose from (uniformly). Default: all of them. */
  kinds?: readonly FaultKind[];
  /**
   * How long a `timeout` fault holds the request before destroying the socket. The
   * Azure SDK sets no client-side per-try timeout by default (tryTimeoutInMs undefined),
   * so an unbounded hold would hang the upload forever; a bounded hold then a reset
   * looks to the client like a server that stopped answering. Default 3000 ms.
   */
  holdMs?: number;
  /** Share of status/reset/timeout faults injected after forwarding (truncate always is). Default 0.5. */
  afterShare?: number;
}

export interface FaultRecord {
  kind: FaultKind;
  phase: FaultPhase;
  method: string;
  path: string;
}

export interface FaultProxyStats {
  /** Requests the proxy received. */
  requests: number;
  /** Requests that reached Azurite (with or without a fault after). */
  forwarded: number;
  /** Faults injected, per kind. */
  faults: Record<FaultKind, number>;
  /** Faults injected, per phase. */
  phases: Record<FaultPhase, number>;
  /** Total faults injected. */
  totalFaults: number;
  /** Errors talking to Azurite itself (answered 502; not injected faults). */
  upstreamErrors: number;
}

export interface FaultProxy {
  port: number;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** http://127.0.0.1:<port>/devstoreaccount1 (path style, as Azurite). */
  serviceUrl: string;
  /** Kusto-style connection string through the proxy: http://127.0.0.1:<port>/devstoreaccount1/<path>;<key>. */
  connectionString(containerAndFolder: string): string;
  setRate(rate: number): void;
  readonly rate: number;
  /** Rate 0 (remembering the previous rate) and no new faults; requests in a hold still end as planned. */
  pause(): void;
  resume(): void;
  stats(): FaultProxyStats;
  /** Requests being handled right now (forwarding, on hold, or being answered). */
  inFlight(): number;
  /**
   * Resolves true as soon as a request is in flight (at once if one is), false after
   * `timeoutMs`; with `urlPart`, only a request whose URL contains it counts (another export's
   * late request, a manifest written after its run, must not stand for the one awaited).
   */
  waitForActivity(timeoutMs: number, urlPart?: string): Promise<boolean>;
  /** The most recent faults (up to 1000), for evidence. */
  recent(): FaultRecord[];
  /** Closes the listener, ends held requests and open connections. */
  stop(): Promise<void>;
}

/** mulberry32: small, fast, good enough to pick faults reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);

function azureError(status: 500 | 503, requestId: string): { body: string; code: string; message: string } {
  const code = status === 500 ? "InternalError" : "ServerBusy";
  const message =
    status === 500
      ? "Server encountered an internal error. Please try again after some time."
      : "The server is currently unable to receive requests. Please retry your request.";
  const body =
    `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\n` +
    `RequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`;
  return { body, code, message };
}

const bodiless = (req: IncomingMessage, status: number) => req.method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);

/**
 * An HTTP reverse proxy on 127.0.0.1 in front of Azurite's blob endpoint that fails a
 * seeded-random share of requests, before or after Azurite sees them.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.hostname !== "127.0.0.1" && target.hostname !== "localhost") throw new Error(`fault proxy target must be local, not ${target.hostname}`);
  const kinds = options.kinds?.length ? [...options.kinds] : [...FAULT_KINDS];
  const holdMs = options.holdMs ?? 3000;
  const afterShare = options.afterShare ?? 0.5;
  const random = seededRandom(options.seed ?? 1);
  let rate = options.rate ?? 0.1;
  let pausedRate: number | undefined;
  let stopping = false;

  const stats: FaultProxyStats = {
    requests: 0,
    forwarded: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    phases: { before: 0, after: 0 },
    totalFaults: 0,
    upstreamErrors: 0,
  };
  const recent: FaultRecord[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let requestCounter = 0;
  /** Called with each request's URL as it comes in; with none when the proxy stops. */
  const activityWaiters = new Set<(url?: string) => void>();
  /** URLs of the requests in flight, one entry each (their count is inFlight). */
  const activeUrls: string[] = [];

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const record = (kind: FaultKind, phase: FaultPhase, req: IncomingMessage) => {
    stats.faults[kind]++;
    stats.phases[phase]++;
    stats.totalFaults++;
    recent.push({ kind, phase, method: req.method ?? "", path: req.url ?? "" });
    if (recent.length > 1000) recent.shift();
  };

  /** Decides, from the PRNG only, what happens to the next request. */
  const decide = (): { kind: FaultKind; phase: FaultPhase } | undefined => {
    // Always draw the same number of values, so the fault sequence depends only on the seed and request order.
    const r1 = random();
    const r2 = random();
    const r3 = random();
    if (rate <= 0 || r1 >= rate) return undefined;
    const kind = kinds[Math.min(kinds.length - 1, Math.floor(r2 * kinds.length))]!;
    const phase: FaultPhase = kind === "truncate" ? "after" : r3 < afterShare ? "after" : "before";
    return { kind, phase };
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
      req.on("aborted", () => reject(new Error("client aborted")));
    });

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; statusMessage: string; headers: IncomingHttpHeaders; rawHeaders: string[]; body: Buffer }>((resolve, reject) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined || HOP_BY_HOP.has(k)) continue;
        headers[k] = v;
      }
      headers.host = target.host;
      headers["content-length"] = String(body.length);
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 502, statusMessage: res.statusMessage ?? "", headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
          );
          res.on("error", reject);
        },
      );
      upstream.on("error", reject);
      upstream.end(body);
    });

  const sendStatusFault = (res: ServerResponse, status: 500 | 503) => {
    const requestId = `fault-${++requestCounter}`;
    const { body, code, message } = azureError(status, requestId);
    res.writeHead(status, message.split(".")[0], {
      "content-type": "application/xml",
      "content-length": Buffer.byteLength(body),
      "x-ms-error-code": code,
      "x-ms-request-id": requestId,
      "x-ms-version": "2025-01-05",
      ...(status === 503 ? { "retry-after": "1" } : {}),
    });
    res.end(body);
  };

  const hold = (req: IncomingMessage) => {
    later(holdMs, () => req.socket.destroy());
  };

  const truncate = (req: IncomingMessage, upstream: Awaited<ReturnType<typeof forward>>) => {
    const socket = req.socket;
    const lines = [`HTTP/1.1 ${upstream.status} ${upstream.statusMessage}`];
    for (let i = 0; i < upstream.rawHeaders.length; i += 2) {
      const name = upstream.rawHeaders[i]!;
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      if (name.toLowerCase() === "content-length" && !bodiless(req, upstream.status)) continue;
      lines.push(`${name}: ${upstream.rawHeaders[i + 1]}`);
    }
    if (!bodiless(req, upstream.status)) lines.push(`Content-Length: ${upstream.body.length}`);
    const head = Buffer.from(lines.join("\r\n") + "\r\n\r\n");
    // A body is cut in the middle; an empty body means the cut falls inside the headers.
    const partial =
      upstream.body.length >= 2
        ? Buffer.concat([head, upstream.body.subarray(0, Math.floor(upstream.body.length / 2))])
        : head.subarray(0, Math.max(1, Math.floor(head.length / 2)));
    socket.write(partial, () => socket.destroy());
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const url = req.url ?? "";
    activeUrls.push(url);
    let done = false;
    // A kept-alive socket serves many requests: each takes its listener off once it is done.
    const finished = () => {
      if (done) return;
      done = true;
      activeUrls.splice(activeUrls.indexOf(url), 1);
      req.socket.off("close", finished);
    };
    res.once("close", finished);
    req.socket.once("close", finished);
    for (const wake of [...activityWaiters]) wake(url);
    const fault = stopping ? undefined : decide();
    if (fault?.phase === "before" && fault.kind === "reset") {
      record(fault.kind, fault.phase, req);
      req.socket.destroy();
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      req.socket.destroy();
      return;
    }
    if (fault?.phase === "before") {
      record(fault.kind, fault.phase, req);
      if (fault.kind === "timeout") return hold(req);
      return sendStatusFault(res, fault.kind === "status500" ? 500 : 503);
    }
    let upstream: Awaited<ReturnType<typeof forward>>;
    try {
      stats.forwarded++;
      upstream = await forward(req, body);
    } catch (err) {
      stats.upstreamErrors++;
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`fault proxy: upstream error: ${(err as Error).message}`);
      }
      return;
    }
    if (fault) {
      record(fault.kind, fault.phase, req);
      switch (fault.kind) {
        case "status500":
          return sendStatusFault(res, 500);
        case "status503":
          return sendStatusFault(res, 503);
        case "reset":
          req.socket.destroy();
          return;
        case "timeout":
          return hold(req);
        case "truncate":
          return truncate(req, upstream);
      }
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k)) continue;
      headers[k] = v;
    }
    // HEAD (and 204/304) answers announce a length but carry no body: keep Azurite's header.
    if (!bodiless(req, upstream.status)) headers["content-length"] = String(upstream.body.length);
    res.writeHead(upstream.status, upstream.statusMessage, headers);
    res.end(upstream.body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const origin = `http://127.0.0.1:${port}`;
  const serviceUrl = `${origin}/${AZURITE_ACCOUNT}`;

  return {
    port,
    origin,
    serviceUrl,
    connectionString: (path) => `${serviceUrl}/${path};${AZURITE_KEY}`,
    setRate(r) {
      if (!(r >= 0 && r <= 1)) throw new Error(`fault rate must be within 0..1, not ${r}`);
      rate = r;
      pausedRate = undefined;
    },
    get rate() {
      return rate;
    },
    pause() {
      if (pausedRate === undefined) pausedRate = rate;
      rate = 0;
    },
    resume() {
      if (pausedRate !== undefined) rate = pausedRate;
      pausedRate = undefined;
    },
    stats: () => ({ ...stats, faults: { ...stats.faults }, phases: { ...stats.phases } }),
    recent: () => [...recent],
    inFlight: () => activeUrls.length,
    waitForActivity(timeoutMs, urlPart = "") {
      if (activeUrls.some((u) => u.includes(urlPart))) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const wake = (url?: string) => {
          if (url !== undefined && !url.includes(urlPart)) return;
          clearTimeout(timer);
          activityWaiters.delete(wake);
          resolve(true);
        };
        const timer = setTimeout(() => {
          activityWaiters.delete(wake);
          resolve(false);
        }, timeoutMs);
        activityWaiters.add(wake);
      });
    },
    async stop() {
      stopping = true;
      rate = 0;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const wake of [...activityWaiters]) wake();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
