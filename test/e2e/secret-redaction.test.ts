import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { csv, newContainer, refusal } from "../support/fixtures.js";
import { freePort, waitFor } from "../support/free-port.js";
import { startSpillwayProcesses, type Mode, type SpillwayUnderTest } from "../support/spillway-processes.js";

// SPEC: storage secrets never leave the process. They reach messages through connection
// strings and through storage errors that quote the request URL; so this drives runs that
// fail against real storage with secret-bearing connection strings, then looks at
// everything a client, an operator or a trace collector could see.

const HOUR = { seconds: 3600n };

/** Base64 of random bytes, with '+' and '/' in it so that its URL-encoded form differs. */
function base64Secret(bytes: number): string {
  for (;;) {
    const s = randomBytes(bytes).toString("base64");
    if (s.includes("+") && s.includes("/")) return s;
  }
}

/** An account SAS that looks right in every field but the signature. */
function sasToken(signature: string): string {
  return `sv=2022-11-02&ss=b&srt=sco&sp=rwdlacup&se=2099-01-01T00:00:00Z&st=2020-01-01T00:00:00Z&spr=https,http&sig=${encodeURIComponent(signature)}`;
}

/**
 * Every text a secret could be found as: whole, URL-encoded, and in 16-character pieces
 * (a message cut short or wrapped still gives it away). Compared in lower case, as
 * percent-encoding may be written either way.
 */
function tellTales(secret: string): string[] {
  const forms = new Set<string>();
  for (const form of [secret, encodeURIComponent(secret)]) {
    forms.add(form.toLowerCase());
    for (let i = 0; i + 16 <= form.length; i += 16) forms.add(form.slice(i, i + 16).toLowerCase());
  }
  return [...forms];
}

interface ReceivedSpan {
  service: string;
  name: string;
  attributes: Record<string, string>;
  status: { code: number; message: string };
  /** The span as the collector got it: attributes, events, links, status and all. */
  raw: string;
}

type OtlpAttributes = Array<{ key: string; value: Record<string, unknown> }>;
interface OtlpJson {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttributes };
    scopeSpans?: Array<{ scope?: unknown; spans?: Array<{ name: string; attributes?: OtlpAttributes; status?: { code?: number; message?: string } }> }>;
  }>;
}

/**
 * An OTLP/HTTP JSON receiver that keeps each span whole, and each resource and scope
 * besides, so nothing a collector would store escapes the search.
 */
async function startCollector(): Promise<{ url: string; spans: ReceivedSpan[]; envelopes: string[]; unreadable: string[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const envelopes: string[] = [];
  const unreadable: string[] = [];
  const valueText = (v: Record<string, unknown> | undefined) => String(Object.values(v ?? {})[0] ?? "");
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      const text = body.toString("utf8");
      try {
        const payload = JSON.parse(text || "{}") as OtlpJson;
        for (const rs of payload.resourceSpans ?? []) {
          const service = valueText(rs.resource?.attributes?.find((a) => a.key === "service.name")?.value);
          envelopes.push(JSON.stringify(rs.resource ?? {}));
          for (const ss of rs.scopeSpans ?? []) {
            envelopes.push(JSON.stringify(ss.scope ?? {}));
            for (const s of ss.spans ?? []) {
              const attributes = Object.fromEntries((s.attributes ?? []).map((a) => [a.key, valueText(a.value)]));
              spans.push({ service, name: s.name, attributes, status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" }, raw: JSON.stringify(s) });
            }
          }
        }
      } catch {
        // Not JSON (the exporter fell back to protobuf?): the test must notice, not skip it.
        unreadable.push(text.slice(0, 200));
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, envelopes, unreadable, server };
}

/**
 * Stands between Spillway and the storage account like a proxy or firewall that refuses
 * requests with a page quoting the URL it was asked for, SAS token and all. Azure itself
 * never echoes a signature, so this is the way a real signature reaches an error message.
 */
async function startEchoingGateway(): Promise<{ origin: string; requests: () => number; server: Server }> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on("end", () => res.writeHead(403, { "content-type": "text/html" }).end(`<html><body><h1>403 Forbidden</h1>Access to ${req.url} is not allowed.</body></html>`));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, requests: () => requests, server };
}

/** Something a client, an operator or a collector got to see, and where. */
interface Visible {
  where: string;
  text: string;
}

const asText = (value: unknown) =>
  JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v));

/** The answer of a call, or its error (code and message): both leave the process. */
async function outcomeOf(where: string, call: Promise<unknown>): Promise<Visible> {
  try {
    return { where, text: asText(await call) };
  } catch (err) {
    const e = err as { code?: number; message?: string };
    return { where: `${where} (refused)`, text: `${e.code} ${e.message ?? String(err)}` };
  }
}

/**
 * Everything that has left the Spillway processes about these exports and external
 * tables: what the test recorded on the way (`seen`), every read RPC's answer or error,
 * the internal RPCs a client may try without Spillway's key, the processes' stdout and
 * stderr, and every span the collector received.
 */
async function collectEverythingVisible(
  sw: SpillwayUnderTest,
  collector: { spans: ReceivedSpan[]; envelopes: string[] },
  objects: { exports: string[]; externalTables: string[] },
  seen: Visible[],
): Promise<Visible[]> {
  const answers = await Promise.all([
    ...objects.exports.flatMap((name) => [
      outcomeOf(`ShowContinuousExport ${name}`, sw.catalog.showContinuousExport({ name })),
      outcomeOf(`ShowFailures ${name}`, sw.catalog.showFailures({ name })),
      outcomeOf(`ShowExportedArtifacts ${name}`, sw.catalog.showExportedArtifacts({ name })),
    ]),
    outcomeOf("ListContinuousExports", sw.catalog.listContinuousExports({})),
    ...objects.externalTables.map((name) => outcomeOf(`GetExternalTable ${name}`, sw.catalog.getExternalTable({ name }))),
    outcomeOf("ListExternalTables", sw.catalog.listExternalTables({})),
    // The audit log keeps every management call, the refused ones with secrets among them.
    outcomeOf("ShowCommands", sw.catalog.showCommands({})),
    // Internal RPCs carry secrets between services; a client without the key must get none.
    outcomeOf("ListExportSpecs", sw.catalog.listExportSpecs({})),
    outcomeOf("cursor ListFailures", sw.cursor.listFailures({})),
    outcomeOf("cursor GetExportStates", sw.cursor.getExportStates({})),
  ]);
  return [
    ...seen,
    ...answers,
    { where: "stdout and stderr of the processes", text: sw.output() },
    ...collector.spans.map((s) => ({ where: `span ${s.service} ${s.name}`, text: s.raw })),
    ...collector.envelopes.map((text) => ({ where: "trace resource or scope", text })),
  ];
}

/** Where each secret shows in `visible`, as `where: secret name`. */
function leaksOf(visible: Visible[], secrets: Record<string, string>): string[] {
  const leaks = new Set<string>();
  for (const { where, text } of visible) {
    const haystack = text.toLowerCase();
    for (const [name, secret] of Object.entries(secrets)) {
      if (tellTales(secret).some((t) => haystack.includes(t))) leaks.add(`${where}: ${name}`);
    }
  }
  return [...leaks].sort();
}

describe.concurrent.each<Mode>(["all", "split"])("storage secrets never leave Spillway, even from failing runs (%s)", (mode) => {
  const secrets = {
    "wrong account key": base64Secret(64),
    "bogus SAS signature": base64Secret(32),
    "key of a storage that is not there": base64Secret(64),
    "SAS signature quoted back by a gateway": base64Secret(32),
    "key of an abfss:// connection string, a scheme Spillway refuses": base64Secret(64),
  };
  let azurite: Azurite;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let gateway: Awaited<ReturnType<typeof startEchoingGateway>>;
  let sw: SpillwayUnderTest;

  beforeAll(async () => {
    azurite = await useAzurite();
    collector = await startCollector();
    gateway = await startEchoingGateway();
    sw = await startSpillwayProcesses(mode, {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
  });
  afterAll(async () => {
    await sw?.stop();
    await azurite?.stop();
    collector?.server.close();
    gateway?.server.close();
  });

  it("keeps every secret out of answers, errors, failure records, output and traces", { timeout: 240_000 }, async () => {
    const container = await newContainer(azurite, "secrets");
    const nobodyListens = await freePort();
    const lakes: Record<string, string> = {
      WrongKey: `${azurite.serviceUrl}/${container}/wrong-key;${secrets["wrong account key"]}`,
      BogusSas: `${azurite.serviceUrl}/${container}/bogus-sas?${sasToken(secrets["bogus SAS signature"])}`,
      NotThere: `http://127.0.0.1:${nobodyListens}/devstoreaccount1/${container};${secrets["key of a storage that is not there"]}`,
      Gateway: `${gateway.origin}/devstoreaccount1/${container}?${sasToken(secrets["SAS signature quoted back by a gateway"])}`,
    };
    const seen: Visible[] = [];
    const record = async <T>(where: string, call: Promise<T>): Promise<T> => {
      const answer = await call;
      seen.push({ where, text: asText(answer) });
      return answer;
    };
    const recordRefusal = async (where: string, call: Promise<unknown>) => {
      const err = await refusal(call);
      seen.push({ where: `${where} (refused)`, text: `${err.code} ${err.message}` });
      return err;
    };

    await sw.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    for (const [name, connectionString] of Object.entries(lakes)) {
      await record(`CreateExternalTable ${name}`, sw.catalog.createExternalTable({ name, kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [connectionString] }));
      await record(
        `CreateOrAlterContinuousExport To${name}`,
        sw.catalog.createOrAlterContinuousExport({ name: `To${name}`, externalTable: name, query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: HOUR } }),
      );
    }
    // One more over the gateway, left to the scheduler: its runs fail the same way, unasked.
    await record(
      "CreateOrAlterContinuousExport Scheduled",
      sw.catalog.createOrAlterContinuousExport({ name: "Scheduled", externalTable: "Gateway", query: "SELECT Id FROM Events", properties: { intervalBetweenRuns: { seconds: 1n } } }),
    );
    // Calls refused while they carry a secret: the refusal must not quote it.
    await recordRefusal(
      "CreateExternalTable without a container",
      sw.catalog.createExternalTable({ name: "NoContainer", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`${azurite.serviceUrl};${secrets["wrong account key"]}`] }),
    );
    await recordRefusal(
      "CreateExternalTable over abfss://",
      sw.catalog.createExternalTable({ name: "Gen2", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`abfss://fs@acct.dfs.core.windows.net/p;${secrets["key of an abfss:// connection string, a scheme Spillway refuses"]}`] }),
    );
    await recordRefusal(
      "CreateExternalTable that exists",
      sw.catalog.createExternalTable({ name: "BogusSas", kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [lakes.BogusSas!] }),
    );
    await recordRefusal(
      "CreateOrAlterExternalTable with a bad format",
      sw.catalog.createOrAlterExternalTable({ name: "Gateway", kind: "blob", dataFormat: "avro", columns: [{ name: "Id", type: "long" }], connectionStrings: [lakes.Gateway!] }),
    );

    await sw.query.ingest({ table: "Events", format: "csv", payload: csv([[1], [2]]) });
    const runs = Object.fromEntries(
      await Promise.all(Object.keys(lakes).map(async (name) => [name, await record(`RunContinuousExportNow To${name}`, sw.catalog.runContinuousExportNow({ name: `To${name}` }))] as const)),
    );

    // The runs failed for the reason each storage gave, and said so: nothing passes by staying silent.
    const denied = /storage access denied/;
    const expected: Record<string, RegExp[]> = {
      WrongKey: [denied, /Authori[sz]ationFailure|AuthenticationFailed/],
      BogusSas: [denied, /Authori[sz]ationFailure|AuthenticationFailed/],
      NotThere: [/ECONNREFUSED/],
      // The gateway's page quoted the URL, query string and all, and that made it into the details.
      Gateway: [denied, /403 Forbidden/, new RegExp(`Access to /devstoreaccount1/${container}/\\S+\\?sv=`)],
    };
    for (const [name, patterns] of Object.entries(expected)) {
      expect(runs[name]!.result, `${name}: ${runs[name]!.details}`).toBe("Failed");
      for (const p of patterns) expect(runs[name]!.details).toMatch(p);
      const { failures } = await sw.catalog.showFailures({ name: `To${name}` });
      expect(failures.length, name).toBeGreaterThan(0);
      for (const p of patterns) expect(failures.at(-1)!.details).toMatch(p);
    }
    expect(gateway.requests()).toBeGreaterThan(0);
    await waitFor("a failed scheduled run", async () => ((await sw.catalog.showFailures({ name: "Scheduled" })).failures.some((f) => /403 Forbidden/.test(f.details)) ? true : undefined));
    // Shown connection strings are there, masked: the answers do carry them.
    for (const name of Object.keys(lakes)) {
      const [shown] = (await sw.catalog.getExternalTable({ name })).externalTable!.connectionStrings;
      expect(shown).toMatch(/[;?]\*+$/);
    }

    // Every run's span reached the collector, its failure in its status.
    const exports = [...Object.keys(lakes).map((n) => `To${n}`), "Scheduled"];
    await waitFor("the failed run span of every export", async () =>
      exports.every((e) => collector.spans.some((s) => s.name === "continuous_export.run" && s.attributes["spillway.export"] === e && /denied|ECONNREFUSED/.test(s.status.message)))
        ? true
        : undefined,
    );
    // Spans end before they are sent: wait for what is still in the processes' buffers.
    await new Promise((r) => setTimeout(r, 500));
    expect(collector.unreadable).toEqual([]);

    const visible = await collectEverythingVisible(sw, collector, { exports, externalTables: Object.keys(lakes) }, seen);
    expect(leaksOf(visible, secrets)).toEqual([]);
    // Masked where it was quoted, rather than the quote dropped.
    expect(runs.Gateway!.details).toMatch(/[?&]sig=\*+/);
  });
});
