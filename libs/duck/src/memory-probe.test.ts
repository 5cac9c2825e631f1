import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckdbMemoryProbe, FRESH_READING_MS } from "./memory-probe.js";

describe("DuckdbMemoryProbe", () => {
  let instance: DuckDBInstance;
  let queries = 0;
  let failNext = false;
  // A real instance, with a count of the readings queried (what sharing saves) and a way to make one fail.
  const counting = {
    connect: async () => {
      const c = await instance.connect();
      const run = c.run.bind(c);
      c.run = ((...args: Parameters<typeof run>) => {
        queries++;
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("reading failed"));
        }
        return run(...args);
      }) as typeof c.run;
      return c;
    },
  };

  beforeAll(async () => {
    instance = await DuckDBInstance.create(":memory:");
  });

  afterAll(() => instance.closeSync());

  it("reads DuckDB's memory once for probes asked together, and again once the reading is no longer fresh", async () => {
    let clock = 1000;
    const probe = new DuckdbMemoryProbe(counting, () => clock);
    queries = 0;
    // So there is memory to read: a table of a few megabytes.
    const c = await instance.connect();
    await c.run("CREATE TABLE held AS SELECT range AS i, repeat('x', 100) AS s FROM range(50000)");
    const together = await Promise.all([probe.read(), probe.read(), probe.read()]);
    expect(queries).toBe(1);
    expect(together[0]).toBeGreaterThan(0n);
    expect(new Set(together).size).toBe(1);
    clock += FRESH_READING_MS - 1;
    expect(await probe.read()).toBe(together[0]);
    expect(queries).toBe(1);
    clock += 1;
    await probe.read();
    expect(queries).toBe(2);
    c.closeSync();
    probe.close();
    expect(await probe.read()).toBe(0n);
    expect(queries).toBe(2);
  });

  it("gives a failed reading to every probe that waited for it, and reads again at the next probe", async () => {
    let clock = 0;
    const probe = new DuckdbMemoryProbe(counting, () => clock);
    queries = 0;
    failNext = true;
    const waited = await Promise.allSettled([probe.read(), probe.read()]);
    expect(waited.map((w) => w.status)).toEqual(["rejected", "rejected"]);
    expect(queries).toBe(1);
    // No time passed: a failure is not a reading to reuse.
    expect(await probe.read()).toBeGreaterThanOrEqual(0n);
    expect(queries).toBe(2);
    probe.close();
  });

  it("answers 0 once closed, also to a probe that was asked just before the close", async () => {
    let clock = 0;
    const probe = new DuckdbMemoryProbe(counting, () => clock);
    await probe.read();
    clock += FRESH_READING_MS;
    const asked = probe.read();
    probe.close();
    expect(await asked).toBe(0n);
    expect(await probe.read()).toBe(0n);
  });
});
