import { describe, expect, it } from "vitest";
import { measured } from "./resource-meter.js";

describe("measured", () => {
  it("counts the CPU a call burns and the largest memory it held", async () => {
    let probes = 0;
    const sizes = [10n, 500n, 20n];
    const { value, usage } = await measured(
      async () => {
        const end = performance.now() + 120;
        let x = 0;
        while (performance.now() < end) x += Math.sqrt(x + 1);
        await new Promise((r) => setTimeout(r, 80));
        return x > 0 ? "done" : "never";
      },
      async () => sizes[Math.min(probes++, sizes.length - 1)]!,
    );
    expect(value).toBe("done");
    // 120 ms of a busy loop: at least most of it is CPU time.
    expect(usage.cpuTimeUs).toBeGreaterThan(60_000n);
    expect(usage.peakDuckdbMemoryBytes).toBe(500n);
    expect(usage.peakProcessMemoryBytes).toBeGreaterThan(0n);
    expect(probes).toBeGreaterThan(2);
  });

  it("passes on the call's failure, and a failing probe does not fail the call", async () => {
    await expect(measured(async () => Promise.reject(new Error("broken")), async () => 1n)).rejects.toThrow("broken");
    const { usage } = await measured(async () => "ok", async () => Promise.reject(new Error("no probe")));
    expect(usage.peakDuckdbMemoryBytes).toBe(0n);
  });
});
