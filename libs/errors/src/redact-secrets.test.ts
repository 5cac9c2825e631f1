import { describe, expect, it } from "vitest";
import { redactSecrets } from "./redact-secrets.js";

describe("redactSecrets", () => {
  const key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
  it("masks the account key of a Kusto connection string", () => {
    const out = redactSecrets(`failed for http://127.0.0.1:10000/devstoreaccount1/lake;${key} today`);
    expect(out).toBe("failed for http://127.0.0.1:10000/devstoreaccount1/lake;******* today");
  });
  it("masks SAS signatures and account keys in Azure connection strings", () => {
    expect(redactSecrets("https://a.blob.core.windows.net/c?sv=2020&sig=abc%2Fdef&se=1")).toBe(
      "https://a.blob.core.windows.net/c?sv=2020&sig=*******&se=1",
    );
    expect(redactSecrets(`AccountName=x;AccountKey=${key};BlobEndpoint=y`)).toBe(
      "AccountName=x;AccountKey=*******;BlobEndpoint=y",
    );
  });
  it("masks the password of a PostgreSQL URL", () => {
    expect(redactSecrets("cannot reach postgres://spillway:s3cr%40t@db:5432/meta now")).toBe("cannot reach postgres://spillway:*******@db:5432/meta now");
    expect(redactSecrets("postgresql://u:p@h/db")).toBe("postgresql://u:*******@h/db");
  });
  it("masks the key or token of a connection string of any scheme, all of it", () => {
    expect(redactSecrets(`bad abfss://fs@acct.dfs.core.windows.net/p;${key} here`)).toBe("bad abfss://fs@acct.dfs.core.windows.net/p;******* here");
    expect(redactSecrets(`"wasbs://c@acct.blob.core.windows.net/p;${key}"`)).toBe('"wasbs://c@acct.blob.core.windows.net/p;*******"');
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIiwiYXVkIjoic3BpbGx3YXkifQ.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu_-x";
    expect(redactSecrets(`https://a.blob.core.windows.net/c;token=${jwt} and more`)).toBe("https://a.blob.core.windows.net/c;******* and more");
    expect(redactSecrets(`the header was ${jwt}.`)).toBe("the header was *******.");
  });
  it("stops at the punctuation around a key, and masks passwords of any URL and of connection strings", () => {
    expect(redactSecrets(`(https://a.blob.core.windows.net/c;${key}), then https://b/x`)).toBe("(https://a.blob.core.windows.net/c;*******), then https://b/x");
    expect(redactSecrets("https://user:hunter2secret@proxy:8080/path")).toBe("https://user:*******@proxy:8080/path");
    // (What follows a URL and a ';' is masked as a key would be, even a key's name.)
    expect(redactSecrets("Endpoint=sb://x/;SharedAccessKeyName=n;SharedAccessKey=abc123==;EntityPath=q")).toBe("Endpoint=sb://x/;*******;SharedAccessKey=*******;EntityPath=q");
    expect(redactSecrets("Server=h;User Id=u;Password=p@ss;Database=d")).toBe("Server=h;User Id=u;Password=*******;Database=d");
    // Not secrets: a time of day, a port.
    expect(redactSecrets("at 12:30:45 on http://127.0.0.1:10000/devstoreaccount1")).toBe("at 12:30:45 on http://127.0.0.1:10000/devstoreaccount1");
  });
  it("leaves managed identity references alone", () => {
    const text = "https://a.blob.core.windows.net/c;managed_identity=system";
    expect(redactSecrets(text)).toBe(text);
  });
});
