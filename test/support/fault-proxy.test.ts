import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { AZURITE_ACCOUNT, AZURITE_KEY, useAzurite, type Azurite } from "./azurite.js";
import { newContainer } from "./fixtures.js";
import { seededRandom, startFaultProxy, type FaultKind, type FaultPhase, type FaultProxy } from "./fault-proxy.js";

/** A blob client through the proxy that does not retry, so every fault shows. */
const clientVia = (proxy: FaultProxy) =>
  new BlobServiceClient(proxy.serviceUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY), { retryOptions: { maxTries: 1 } });

describe("fault proxy in front of Azurite", () => {
  let azurite: Azurite;
  const proxies: FaultProxy[] = [];
  const proxy = async (options: Parameters<typeof startFaultProxy>[0]) => {
    const p = await startFaultProxy(options);
    proxies.push(p);
    return p;
  };
  beforeAll(async () => {
    azurite = await useAzurite();
  });
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await azurite?.stop();
  });

  it("passes shared-key requests through unchanged at rate 0 (the signature covers the path, not the host)", async () => {
    const p = await proxy({ target: azurite.serviceUrl, rate: 0 });
    const container = await newContainer(azurite, "proxy");
    const via = clientVia(p).getContainerClient(container);
    await via.getBlockBlobClient("a/b.txt").upload("hello", 5);
    expect((await azurite.client.getContainerClient(container).getBlobClient("a/b.txt").downloadToBuffer()).toString()).toBe("hello");
    expect((await via.getBlobClient("a/b.txt").downloadToBuffer()).toString()).toBe("hello");
    const names: string[] = [];
    for await (const b of via.listBlobsFlat()) names.push(b.name);
    expect(names).toEqual(["a/b.txt"]);
    await via.getBlobClient("a/b.txt").delete();
    expect(await azurite.client.getContainerClient(container).getBlobClient("a/b.txt").exists()).toBe(false);
    expect(p.connectionString(`${container}/x`)).toBe(`http://127.0.0.1:${p.port}/${AZURITE_ACCOUNT}/${container}/x;${AZURITE_KEY}`);
    expect(p.stats()).toMatchObject({ totalFaults: 0, upstreamErrors: 0 });
    expect(p.inFlight()).toBe(0);
    expect(await p.waitForActivity(50)).toBe(false);
    const woke = p.waitForActivity(5000);
    await via.exists();
    expect(await woke).toBe(true);
    // With a part of the URL, only a request whose URL has it counts.
    const elsewhere = p.waitForActivity(500, "/another-container/");
    const here = p.waitForActivity(5000, `/${container}`);
    await via.exists();
    expect(await here).toBe(true);
    expect(await elsewhere).toBe(false);
    expect(p.stats().requests).toBe(p.stats().forwarded);
  });

  const cases: Array<[FaultKind, FaultPhase]> = [
    ["status500", "before"],
    ["status500", "after"],
    ["status503", "before"],
    ["status503", "after"],
    ["reset", "before"],
    ["reset", "after"],
    ["timeout", "before"],
    ["timeout", "after"],
    ["truncate", "after"],
  ];
  it.each(cases)("%s %s forwarding: the client fails; Azurite applied the write only after", async (kind, phase) => {
    const p = await proxy({ target: azurite.serviceUrl, rate: 1, kinds: [kind], afterShare: phase === "after" ? 1 : 0, holdMs: 300 });
    const container = await newContainer(azurite, "fault");
    const started = Date.now();
    const err = await clientVia(p)
      .getContainerClient(container)
      .getBlockBlobClient("f.txt")
      .upload("data", 4)
      .then(() => undefined, (e: unknown) => e as { statusCode?: number; code?: string; message: string });
    expect(err, `${kind} ${phase} must fail the request`).toBeDefined();
    if (kind === "status500" || kind === "status503") {
      expect(err!.statusCode).toBe(kind === "status500" ? 500 : 503);
      expect(err!.code).toBe(kind === "status500" ? "InternalError" : "ServerBusy");
    }
    if (kind === "timeout") expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const applied = await azurite.client.getContainerClient(container).getBlobClient("f.txt").exists();
    expect(applied).toBe(phase === "after");
    expect(p.stats().faults[kind]).toBe(1);
    expect(p.stats().phases[phase]).toBe(1);
  });

  it("cuts a non-empty response body in the middle", async () => {
    const container = await newContainer(azurite, "cut");
    await azurite.client.getContainerClient(container).getBlockBlobClient("big.txt").upload("x".repeat(10_000), 10_000);
    const p = await proxy({ target: azurite.serviceUrl, rate: 1, kinds: ["truncate"] });
    await expect(clientVia(p).getContainerClient(container).getBlobClient("big.txt").downloadToBuffer()).rejects.toThrow();
    expect(p.stats().faults.truncate).toBe(1);
  });

  it("fails about `rate` of requests, reproducibly from the seed, and can be paused", async () => {
    const container = await newContainer(azurite, "rate");
    const run = async (seed: number) => {
      const p = await proxy({ target: azurite.serviceUrl, rate: 0.1, seed, kinds: ["status500", "status503"] });
      const outcomes: boolean[] = [];
      const blob = clientVia(p).getContainerClient(container).getBlobClient("none");
      for (let i = 0; i < 200; i++) outcomes.push(await blob.exists().then(() => true, () => false));
      p.pause();
      for (let i = 0; i < 50; i++) expect(await blob.exists()).toBe(false);
      p.resume();
      expect(p.rate).toBe(0.1);
      return { outcomes, stats: p.stats() };
    };
    const a = await run(42);
    const b = await run(42);
    expect(a.outcomes).toEqual(b.outcomes);
    expect(a.stats.totalFaults).toBe(a.outcomes.filter((ok) => !ok).length);
    expect(a.stats.totalFaults).toBeGreaterThanOrEqual(8);
    expect(a.stats.totalFaults).toBeLessThanOrEqual(35);
    expect(a.stats.requests).toBe(250);
    const r = seededRandom(7);
    const s = seededRandom(7);
    expect(Array.from({ length: 5 }, r)).toEqual(Array.from({ length: 5 }, s));
  });

  it("keeps no listener of a request once it is done on a kept-alive socket (no MaxListenersExceededWarning after many)", async () => {
    const p = await proxy({ target: azurite.serviceUrl, rate: 0 });
    const container = await newContainer(azurite, "proxy");
    const via = clientVia(p).getContainerClient(container);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      // One after another: the client's kept-alive socket carries them all.
      for (let i = 0; i < 30; i++) await via.getBlockBlobClient(`kept/${i}`).upload("x", 1);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
    expect(p.inFlight()).toBe(0);
  });

  it("stops cleanly with a request on hold", async () => {
    const p = await startFaultProxy({ target: azurite.serviceUrl, rate: 1, kinds: ["timeout"], holdMs: 60_000 });
    const pending = clientVia(p).getContainerClient("whatever").exists().then(() => "answered", () => "failed");
    await new Promise((r) => setTimeout(r, 200));
    expect(p.inFlight()).toBe(1);
    const t = Date.now();
    await p.stop();
    expect(await pending).toBe("failed");
    expect(Date.now() - t).toBeLessThan(2000);
  });
});
