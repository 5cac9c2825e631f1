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
  it("keeps metadata in DuckDB files unless SPILLWAY_METADATA_URL names a PostgreSQL database, and never echoes that URL", () => {
    expect(loadConfig([], {}).metadataUrl).toBeUndefined();
    const url = "postgres://spillway:s3cret-pass@db.internal:5432/spillway";
    expect(loadConfig([], { SPILLWAY_METADATA_URL: url }).metadataUrl).toBe(url);
    expect(loadConfig(["--metadata-url", "postgresql://u:p@h/db"]).metadataUrl).toBe("postgresql://u:p@h/db");
    for (const [bad, message] of [
      ["mysql://u:s3cret-pass@h/db", "only postgres:// (PostgreSQL) is supported"],
      ["s3cret-pass", "is not a URL"],
      ["postgres://u:s3cret-pass@h", "needs a host and a database"],
    ]) {
      let thrown: Error | undefined;
      try {
        loadConfig([], { SPILLWAY_METADATA_URL: bad });
      } catch (err) {
        thrown = err as Error;
      }
      expect(thrown?.message).toContain(message);
      expect(thrown?.message).not.toContain("s3cret-pass");
    }
  });
  it("serves metrics on 127.0.0.1:9464 unless told another address or off", () => {
    expect(loadConfig([], {}).metricsListen).toBe("127.0.0.1:9464");
    expect(loadConfig([], { SPILLWAY_METRICS_LISTEN: "0.0.0.0:9100" }).metricsListen).toBe("0.0.0.0:9100");
    expect(loadConfig(["--metrics-listen=off"]).metricsListen).toBeUndefined();
    expect(loadConfig([], {}).httpListen).toBe("127.0.0.1:8080");
    expect(loadConfig([], { SPILLWAY_HTTP_LISTEN: "127.0.0.1:0" }).httpListen).toBe("127.0.0.1:0");
    expect(loadConfig(["--http-listen=off"]).httpListen).toBeUndefined();
    expect(() => loadConfig(["--http-listen=8080"])).toThrow("console listen address '8080' is not host:port (or 'off')");
    // Open (no authentication) is for this host only, the console as the API.
    expect(() => loadConfig(["--http-listen=0.0.0.0:8080"], {})).toThrow("the console on 0.0.0.0:8080 without authentication is refused");
    expect(loadConfig(["--http-listen=0.0.0.0:8080", "--auth=none"], {}).httpListen).toBe("0.0.0.0:8080");
    expect(() => loadConfig([], { SPILLWAY_METRICS_LISTEN: "9464" })).toThrow(/metrics listen address '9464' is not host:port/);
  });
  it("reads ingestion limits as sizes and timespans", () => {
    const c = loadConfig(["--max-ingest-size=64MB"], { SPILLWAY_INGEST_IDLE_TIMEOUT: "5s" });
    expect(c.maxIngestBytes).toBe(64 * 1024 * 1024);
    expect(c.ingestIdleTimeoutMs).toBe(5000);
  });
  it("takes every module as a target, the Kusto front door included", () => {
    expect(loadConfig(["--target=kusto"], {}).target).toBe("kusto");
    expect(loadConfig([], { SPILLWAY_TARGET: "scheduler" }).target).toBe("scheduler");
  });
  it("refuses bad values with a message naming them", () => {
    expect(() => loadConfig(["--target", "everything"], {})).toThrow(/target 'everything'/);
    expect(() => loadConfig([], { SPILLWAY_MIN_INTERVAL: "500ms" })).toThrow(/at least 1s/);
    expect(() => loadConfig(["--frobnicate", "1"], {})).toThrow(/unknown flag --frobnicate/);
    expect(() => loadConfig([], { SPILLWAY_MIN_SIZE_LIMIT: "lots" })).toThrow(/not a size/);
    expect(() => loadConfig(["--max-ingest-size", "0"], {})).toThrow("max ingest size must be more than zero (got 0)");
    expect(() => loadConfig([], { SPILLWAY_INGEST_IDLE_TIMEOUT: "soon" })).toThrow(/ingest idle timeout/);
  });

  describe("authentication and where it may be off", () => {
    const jwt = { SPILLWAY_AUTH_ISSUER: "https://login.example/t/v2.0", SPILLWAY_AUTH_AUDIENCE: "api://spillway", SPILLWAY_AUTH_JWKS: "https://login.example/keys" };
    it("runs open on a loopback address when nothing is configured", () => {
      expect(loadConfig([], {}).auth.mode).toBe("open");
      expect(loadConfig(["--listen=[::1]:5"], {}).auth.mode).toBe("open");
      expect(loadConfig(["--listen=localhost:5"], {}).auth.mode).toBe("open");
    });
    it("refuses any other address without auth, naming the settings, unless --auth=none", () => {
      expect(() => loadConfig(["--listen=0.0.0.0:50051"], {})).toThrow(/SPILLWAY_AUTH_ISSUER, SPILLWAY_AUTH_AUDIENCE and SPILLWAY_AUTH_JWKS.*--auth=none/);
      expect(() => loadConfig(["--listen=10.1.2.3:50051"], {})).toThrow(/without authentication is refused/);
      expect(loadConfig(["--listen=0.0.0.0:50051", "--auth=none"], {}).auth.mode).toBe("none");
    });
    it("takes the issuer, audience, JWKS, principal claim and cluster principals", () => {
      const c = loadConfig(["--listen=0.0.0.0:1"], { ...jwt, SPILLWAY_CLUSTER_ADMINS: "aaduser=a@x.com, aadapp=1234", SPILLWAY_AUTH_PRINCIPAL_CLAIM: "oid" });
      expect(c.auth).toMatchObject({ mode: "jwt", ...{ issuer: jwt.SPILLWAY_AUTH_ISSUER, audience: jwt.SPILLWAY_AUTH_AUDIENCE, jwks: jwt.SPILLWAY_AUTH_JWKS }, principalClaim: "oid", clusterAdmins: ["aaduser=a@x.com", "aadapp=1234"] });
    });
    it("refuses half a configuration and badly written principals", () => {
      expect(() => loadConfig([], { SPILLWAY_AUTH_ISSUER: jwt.SPILLWAY_AUTH_ISSUER })).toThrow("authentication needs SPILLWAY_AUTH_AUDIENCE, SPILLWAY_AUTH_JWKS as well");
      expect(() => loadConfig([], { ...jwt, SPILLWAY_CLUSTER_ADMINS: "alice" })).toThrow(/'alice' is not written as aaduser=<id>/);
      expect(() => loadConfig(["--auth=none"], jwt)).toThrow(/--auth=none/);
    });
  });

  describe("file target roots", () => {
    it("allows ./lake and the OS temp folder in the open default, nothing with auth until roots are given", () => {
      expect(loadConfig([], {}).fileTargetRoots).toEqual([join(process.cwd(), "lake"), tmpdir()]);
      const jwt = { SPILLWAY_AUTH_ISSUER: "i", SPILLWAY_AUTH_AUDIENCE: "a", SPILLWAY_AUTH_JWKS: "/k.json" };
      expect(loadConfig([], jwt).fileTargetRoots).toEqual([]);
      expect(loadConfig([], { ...jwt, SPILLWAY_FILE_TARGET_ROOTS: "/srv/lake, /mnt/exports/" }).fileTargetRoots).toEqual(["/srv/lake", "/mnt/exports"]);
      expect(() => loadConfig([], { SPILLWAY_FILE_TARGET_ROOTS: "lake" })).toThrow(/not an absolute folder/);
    });
  });

  describe("TLS and limits", () => {
    it("reads the PEM files, and refuses half a TLS configuration", () => {
      const dir = mkdtempSync(join(tmpdir(), "cfg-tls-"));
      for (const f of ["cert.pem", "key.pem", "ca.pem"]) writeFileSync(join(dir, f), f);
      const c = loadConfig([], { SPILLWAY_TLS_CERT: join(dir, "cert.pem"), SPILLWAY_TLS_KEY: join(dir, "key.pem"), SPILLWAY_TLS_CLIENT_CA: join(dir, "ca.pem") });
      expect(c.tls?.cert.toString()).toBe("cert.pem");
      expect(c.tls?.peerCa?.toString()).toBe("ca.pem");
      expect(() => loadConfig([], { SPILLWAY_TLS_CERT: join(dir, "cert.pem") })).toThrow(/both SPILLWAY_TLS_CERT and SPILLWAY_TLS_KEY/);
      expect(() => loadConfig([], { SPILLWAY_TLS_CERT: join(dir, "nope.pem"), SPILLWAY_TLS_KEY: join(dir, "key.pem") })).toThrow(/cannot read TLS certificate .*ENOENT/);
    });
    it("has limits with defaults, settable by flag", () => {
      expect(loadConfig([], {}).limits).toEqual({ maxQueriesPerPrincipal: 16, maxIngestsPerPrincipal: 16, queryTimeoutMs: 240_000, maxQueryResultRows: 500_000, maxQueryResultBytes: 64 * 1024 * 1024, queryMemoryLimit: "2GB" });
      const c = loadConfig(["--max-queries-per-principal=2", "--query-timeout=30s", "--max-query-result-size=1MB", "--query-memory-limit=512MB"], {});
      expect(c.limits).toMatchObject({ maxQueriesPerPrincipal: 2, queryTimeoutMs: 30_000, maxQueryResultBytes: 1024 * 1024, queryMemoryLimit: "512MB" });
      expect(() => loadConfig(["--max-ingests-per-principal=0"], {})).toThrow(/positive integer/);
      expect(() => loadConfig(["--query-memory-limit=lots"], {})).toThrow(/not a size/);
    });
  });
});
