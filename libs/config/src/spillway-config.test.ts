import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./spillway-config.js";

describe("loadConfig", () => {
  it("uses the embedded defaults", () => {
    const c = loadConfig([], {});
    expect(c.listen).toBe("127.0.0.1:50051");
    expect(c.dataDir).toMatch(/\/data$/);
    expect(c.target).toBe("all");
    expect(c.minIntervalMs).toBe(60_000);
    expect(c.minSizeLimit).toBe(100 * 1024 * 1024);
    expect(c.maxIngestBytes).toBe(4 * 1024 * 1024 * 1024);
    expect(c.ingestIdleTimeoutMs).toBe(60_000);
  });
  it("lets flags beat env beat the config file", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ listen: "127.0.0.1:1", minInterval: "5s", target: "writer" }));
    const c = loadConfig(["--listen", "127.0.0.1:3"], { SPILLWAY_CONFIG: file, SPILLWAY_LISTEN: "127.0.0.1:2", SPILLWAY_MIN_INTERVAL: "2s" });
    expect(c.listen).toBe("127.0.0.1:3");
    expect(c.minIntervalMs).toBe(2000);
    expect(c.target).toBe("writer");
  });
  it("reads ingestion limits as sizes and timespans", () => {
    const c = loadConfig(["--max-ingest-size=64MB"], { SPILLWAY_INGEST_IDLE_TIMEOUT: "5s" });
    expect(c.maxIngestBytes).toBe(64 * 1024 * 1024);
    expect(c.ingestIdleTimeoutMs).toBe(5000);
  });
  it("refuses bad values with a message naming them", () => {
    expect(() => loadConfig(["--target", "everything"], {})).toThrow(/target 'everything'/);
    expect(() => loadConfig([], { SPILLWAY_MIN_INTERVAL: "500ms" })).toThrow(/at least 1s/);
    expect(() => loadConfig(["--frobnicate", "1"], {})).toThrow(/unknown flag --frobnicate/);
    expect(() => loadConfig([], { SPILLWAY_MIN_SIZE_LIMIT: "lots" })).toThrow(/not a size/);
    expect(() => loadConfig(["--max-ingest-size", "0"], {})).toThrow("max ingest size must be more than zero (got 0)");
    expect(() => loadConfig([], { SPILLWAY_INGEST_IDLE_TIMEOUT: "soon" })).toThrow(/ingest idle timeout/);
  });
});
