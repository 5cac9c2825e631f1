import { describe, expect, it } from "vitest";
import { measured } from "./resource-meter.js";

describe("measured", () => {
  it("counts the CPU a call burns and the largest memory it held", async () => {
    let probes = 0;
    const sizes = [10n, 500n, 20n];
    let burnt = 0;
    const { value, usage } = await measured(
      async () => {
        const before = process.cpuUsage();
        const end = performance.now() + 120;
        let x = 0;
        while (performance.now() < end) x += Math.sqrt(x + 1);
        const spent = process.cpuUsage(before);
        burnt = spent.user + spent.system;
        // Past two sampling periods: three samples.
        await new Promise((r) => setTimeout(r, 480));
        return x > 0 ? "done" : "never";
      },
      async () => sizes[Math.min(probes++, sizes.length - 1)]!,
    );
    expect(value).toBe("done");
    // A busy loop's CPU time, however much a loaded machine gave it, is in what was measured.
    expect(burnt).toBeGreaterThan(0);
    expect(usage.cpuTimeUs).toBeGreaterThanOrEqual(BigInt(burnt));
    expect(usage.peakDuckdbMemoryBytes).toBe(500n);
    expect(usage.peakProcessMemoryBytes).toBeGreaterThan(0n);
    expect(probes).toBeGreaterThan(2);
  });

  it("passes on the call's failure, and a failing probe does not fail the call", async () => {
    await expect(measured(async () => Promise.reject(new Error("broken")), async () => 1n)).rejects.toThrow("broken");
    const { usage } = await measured(async () => "ok", async () => Promise.reject(new Error("no probe")));
    expect(usage.peakDuckdbMemoryBytes).toBe(0n);
  });

  it("starts no sample at the end of a call, and waits for one under way", async () => {
    let started = 0;
    let finished = 0;
    const probe = (ms: number) => async () => {
      started++;
      await new Promise((r) => setTimeout(r, ms));
      finished++;
      return 7n;
    };
    // Shorter than a probe: the one started with the call is waited for, so the figure is there.
    const quick = await measured(async () => "quick", probe(30));
    expect(quick.usage.peakDuckdbMemoryBytes).toBe(7n);
    expect([started, finished]).toEqual([1, 1]);
    // Samples at 0 and 250 ms, done by 252: none is under way at 270 ms, and none is started then.
    started = finished = 0;
    await measured(() => new Promise((r) => setTimeout(r, 270)), probe(2));
    expect(started).toBe(2);
    expect(finished).toBe(2);
  });
});
