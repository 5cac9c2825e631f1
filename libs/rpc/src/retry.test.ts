import { describe, expect, it } from "vitest";
import { invalidArgument, unavailable } from "@spillway/errors";
import { backoffDelay, withRetry } from "./retry.js";

describe("withRetry", () => {
  const options = { attempts: 4, baseDelayMs: 100, maxDelayMs: 300, random: () => 0.5 };

  it("retries transient failures with growing, capped delays, then succeeds", async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 4) throw unavailable("storage busy");
        return "done";
      },
      { ...options, sleep: async (ms) => void slept.push(ms) },
    );
    expect(result).toBe("done");
    expect(calls).toBe(4);
    // ceilings 100, 200, 300 (capped); half fixed, half jitter at 0.5
    expect(slept).toEqual([75, 150, 225]);
  });

  it("gives up after the last attempt with the last error", async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw unavailable(`try ${calls}`);
      }, { ...options, sleep: async () => {} }),
    ).rejects.toThrow("try 4");
    expect(calls).toBe(4);
  });

  it("does not retry what retrying cannot fix", async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw invalidArgument("bad schema");
      }, { ...options, sleep: async () => {} }),
    ).rejects.toThrow("bad schema");
    expect(calls).toBe(1);
  });

  it("keeps jittered delays within [ceiling/2, ceiling)", () => {
    for (const r of [0, 0.25, 0.999]) {
      const d = backoffDelay(3, { baseDelayMs: 100, maxDelayMs: 10_000 }, () => r);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThan(400);
    }
  });
});
