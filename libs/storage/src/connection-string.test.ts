import { describe, expect, it } from "vitest";
import { maskConnectionString, parseConnectionString } from "./connection-string.js";

const KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

describe("parseConnectionString", () => {
  it("reads an Azurite path-style URL with a folder and a key", () => {
    expect(parseConnectionString(`http://127.0.0.1:10000/devstoreaccount1/lake/events/v1;${KEY}`)).toEqual({
      kind: "blob",
      serviceUrl: "http://127.0.0.1:10000/devstoreaccount1",
      accountName: "devstoreaccount1",
      container: "lake",
      prefix: "events/v1",
      auth: { kind: "key", key: KEY },
    });
  });
  it("reads an Azure URL with a SAS token", () => {
    const loc = parseConnectionString("https://acct.blob.core.windows.net/c1?sv=2020&sig=abc");
    expect(loc).toMatchObject({ kind: "blob", serviceUrl: "https://acct.blob.core.windows.net", accountName: "acct", container: "c1", prefix: "" });
    expect(loc.kind === "blob" && loc.auth).toEqual({ kind: "sas", token: "sv=2020&sig=abc" });
  });
  it("reads a local folder", () => {
    expect(parseConnectionString("file:///var/lake/")).toEqual({ kind: "folder", path: "/var/lake" });
    expect(parseConnectionString("file:///var/my%20lake")).toEqual({ kind: "folder", path: "/var/my lake" });
    expect(parseConnectionString("file://localhost/var/lake")).toEqual({ kind: "folder", path: "/var/lake" });
  });
  it("refuses file URIs that are relative or name a host", () => {
    for (const s of ["file://relative/path", "file://host/x", "file:relative", "file:/var/lake", "file://", "file:"]) {
      expect(() => parseConnectionString(s), s).toThrow(/not an absolute file:\/\/\/ URI/);
    }
  });
  it("refuses '..' in a file URI rather than letting the URL parser fold it away", () => {
    for (const s of ["file:///var/lake/../etc", "file:///var/lake/%2e%2e/etc", "file:///var/lake/.%2E/etc", "file:///var/lake/%2e%2e%2fetc"]) {
      expect(() => parseConnectionString(s), s).toThrow(/contains '\.\.'/);
    }
  });
  it("refuses strings without credentials or container, without echoing secrets", () => {
    expect(() => parseConnectionString("https://acct.blob.core.windows.net/c1")).toThrow(/no credentials/);
    expect(() => parseConnectionString(`https://acct.blob.core.windows.net;${KEY}`)).toThrow(/names no container/);
    try {
      parseConnectionString(`https://acct.blob.core.windows.net;${KEY}`);
    } catch (err) {
      expect((err as Error).message).not.toContain(KEY);
    }
    expect(() => parseConnectionString("s3://bucket")).toThrow(/neither a blob container URL/);
  });
});

describe("maskConnectionString", () => {
  it("hides keys and SAS tokens", () => {
    expect(maskConnectionString(`http://127.0.0.1:10000/devstoreaccount1/lake;${KEY}`)).toBe(
      "http://127.0.0.1:10000/devstoreaccount1/lake;*******",
    );
    expect(maskConnectionString("https://a.blob.core.windows.net/c?sv=1&sig=x")).toBe("https://a.blob.core.windows.net/c?*******");
    expect(maskConnectionString("file:///tmp/x")).toBe("file:///tmp/x");
  });

  it("hides the secret of a scheme Spillway refuses too, as the refusal and the audit record echo it", () => {
    expect(maskConnectionString(`abfss://fs@acct.dfs.core.windows.net/p;${KEY}`)).toBe("abfss://fs@acct.dfs.core.windows.net/p;*******");
    expect(maskConnectionString("wasbs://c@acct.blob.core.windows.net/p?sv=1&sig=x")).toBe("wasbs://c@acct.blob.core.windows.net/p?*******");
    expect(maskConnectionString(`acct;${KEY}`)).toBe("acct;*******");
    expect(maskConnectionString("https://a.blob.core.windows.net/c;managed_identity=system")).toBe("https://a.blob.core.windows.net/c;managed_identity=system");
    expect(() => parseConnectionString(`abfss://fs@acct.dfs.core.windows.net/p;${KEY}`)).toThrow("connection string 'abfss://fs@acct.dfs.core.windows.net/p;*******' is neither");
  });
});
