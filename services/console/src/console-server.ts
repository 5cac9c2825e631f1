import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { isIP } from "node:net";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, redactSecrets } from "@spillway/errors";
import { databaseName } from "@spillway/kusto";
import type { CatalogService } from "@spillway/proto";
import type { AccessTable, Admission, PublicRule } from "@spillway/rpc";
import type { ConsoleData } from "./console-data.js";

/** Admits a read for the bearer token of an HTTP request, as the API admits the RPC it reads through. */
export interface ConsoleGuard {
  admit(rpc: string, rule: PublicRule<never>, request: unknown, authorization: string | undefined): Promise<Admission>;
}

const here = dirname(fileURLToPath(import.meta.url));
const uplot = dirname(createRequire(import.meta.url).resolve("uplot/package.json"));

/** The pages and their scripts: files served as they are, no build step. */
const FILES: Record<string, { path: string; type: string }> = {
  "/": { path: join(here, "static/index.html"), type: "text/html; charset=utf-8" },
  "/export": { path: join(here, "static/export.html"), type: "text/html; charset=utf-8" },
  "/static/console.js": { path: join(here, "static/console.js"), type: "text/javascript; charset=utf-8" },
  "/static/console.css": { path: join(here, "static/console.css"), type: "text/css; charset=utf-8" },
  "/static/uPlot.iife.min.js": { path: join(uplot, "dist/uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
  "/static/uPlot.min.css": { path: join(uplot, "dist/uPlot.min.css"), type: "text/css; charset=utf-8" },
};

/** The HTTP status of a refused or failed read. */
const STATUS: Partial<Record<number, number>> = {
  [ErrorCode.unauthenticated]: 401,
  [ErrorCode.permissionDenied]: 403,
  [ErrorCode.notFound]: 404,
  [ErrorCode.invalidArgument]: 400,
  [ErrorCode.resourceExhausted]: 429,
  [ErrorCode.unavailable]: 503,
};

/**
 * The console over HTTP (SPEC §8, README "Console"): static pages whose script reads two data
 * endpoints, `/api/overview?database=` and `/api/export?database=&name=`. The pages hold no
 * data and are served to anyone; each data request is admitted for its bearer token as the
 * RPCs it reads through (the same roles as the API: Database Monitor or more).
 */
export interface ConsoleServerOptions {
  /** Serve HTTPS with this certificate (the API's, when it has TLS). */
  tls?: { cert: Buffer; key: Buffer };
  /**
   * Answer only requests addressed to this host by IP or as localhost: with authentication
   * open on a loopback address, a web page elsewhere could otherwise point a name of its own
   * at 127.0.0.1 and read the console through the browser (DNS rebinding).
   */
  loopbackHostsOnly?: boolean;
}

export class ConsoleServer {
  private server?: Server;

  constructor(
    private readonly data: ConsoleData,
    private readonly guard: ConsoleGuard,
    private readonly rules: AccessTable<typeof CatalogService>,
    private readonly options: ConsoleServerOptions = {},
  ) {}

  /** Listens at `listen` (host:port, port 0 for any); resolves to the port taken. */
  async start(listen: string): Promise<number> {
    const at = listen.lastIndexOf(":");
    const handler = (req: IncomingMessage, res: ServerResponse) =>
      void this.handle(req, res).catch(() => {
        // Nothing a request does may end the process; a reply that cannot be written is dropped.
        res.destroy();
      });
    const tls = this.options.tls;
    const server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(Number(listen.slice(at + 1)), listen.slice(0, at).replace(/^\[|\]$/g, ""), () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://console");
      if (this.options.loopbackHostsOnly && !isLocalHost(req.headers.host)) return send(res, 421, "text/plain", "the console answers requests to localhost or an IP address only\n");
      if (req.method !== "GET") return send(res, 405, "text/plain", "the console is read-only: GET only\n");
      const file = FILES[url.pathname];
      if (file) return send(res, 200, file.type, await readFile(file.path));
      if (url.pathname === "/api/overview") return await this.api(req, res, url, ["listContinuousExports", "showRunHistory", "showFailures"], (database) => this.data.overview(database));
      if (url.pathname === "/api/export") {
        const name = url.searchParams.get("name");
        if (!name) return sendJson(res, 400, { error: "name is required: /api/export?name=<export>" });
        return await this.api(req, res, url, ["showContinuousExport", "showRunHistory", "showExportedArtifacts", "showFailures"], (database) => this.data.exportPage(database, name), name);
      }
      send(res, 404, "text/plain", "not found: the console is at /\n");
    } catch (err) {
      const e = err as { code?: number; message?: string };
      if (err instanceof TypeError && /Invalid URL/i.test(e.message ?? "")) return send(res, 400, "text/plain", "bad request\n");
      if (res.headersSent) return void res.destroy();
      sendJson(res, STATUS[e.code ?? -1] ?? 500, { error: redactSecrets(e.message ?? String(err)) });
    }
  }

  /** A data request: admitted as each RPC it reads through, for the request's token; the answer as JSON. */
  private async api(req: IncomingMessage, res: ServerResponse, url: URL, reads: Array<keyof typeof this.rules>, load: (database: string) => Promise<unknown>, name = ""): Promise<void> {
    const database = databaseName(url.searchParams.get("database") ?? "");
    const admissions: Admission[] = [];
    let failure: unknown;
    try {
      for (const rpc of reads) admissions.push(await this.guard.admit(`CatalogService/${rpc}`, this.rules[rpc] as PublicRule<never>, { database, name }, req.headers.authorization));
      sendJson(res, 200, await load(database));
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      await Promise.all(admissions.map((a) => a.finish(failure)));
    }
  }
}

/** A Host header naming this machine: localhost, or an IP address (with its port, if any). */
function isLocalHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return name === "localhost" || isIP(name) !== 0;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" }).end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(body));
}
