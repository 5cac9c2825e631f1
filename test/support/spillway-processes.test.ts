import { describe, expect, it } from "vitest";
import { startSpillwayProcesses, startWaves } from "./spillway-processes.js";

describe("the process harness", () => {
  it("fails with what the processes said when they cannot start, instead of waiting them out", async () => {
    const err = await startSpillwayProcesses("split", { SPILLWAY_MIN_INTERVAL: "500ms" }).then(
      () => new Error("started, but the configuration is invalid"),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/did not start: spillway \w+ exited \(code 2, signal null\) before it listened/);
    expect(err.message).toContain("min interval must be at least 1s");
  });

  it("spawns each process after those it calls, leaves first", () => {
    expect(startWaves()).toEqual([["cursor", "writer"], ["catalog"], ["query", "console"], ["scheduler", "kusto"]]);
  });

  it("lets each process pick its port and keeps it across a restart", async () => {
    const sw = await startSpillwayProcesses("split");
    try {
      const ports = [sw.catalogAddress, sw.queryAddress, sw.kustoAddress].map((a) => Number(a.split(":")[1]));
      expect(new Set(ports).size).toBe(3);
      for (const port of ports) expect(port).toBeGreaterThan(0);
      expect(sw.output()).toContain(`listening on ${sw.catalogAddress}`);
      await sw.catalog.createTable({ database: "default", name: "T", columns: [{ name: "x", type: "long" }] });
      await sw.kill();
      await sw.start();
      // The clients dial the same addresses, and the catalog they reach has the table made before.
      const { tables } = await sw.catalog.listTables({ database: "default" });
      expect(tables.map((t) => t.name)).toEqual(["T"]);
    } finally {
      await sw.stop();
    }
  });
});
