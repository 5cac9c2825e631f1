import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonValue } from "@bufbuild/protobuf";
import { ErrorCode } from "@spillway/errors";
import { grpcurl, parseGrpcurlArgs } from "../../tools/grpcurl.js";
import { refusal } from "../support/fixtures.js";
import { startIdentityProvider, type IdentityProvider } from "../support/identity-provider.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const section = readme.slice(readme.indexOf("## Security"), readme.indexOf("## Configuration"));
const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\\\n/g, " "));

/** The variables the README's `export` line sets, as written. */
const exported = Object.fromEntries(
  [...blocks.find((b) => b.startsWith("export "))!.matchAll(/(SPILLWAY_[A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
);

/** Splits a shell line as the README writes them: words, '…' and "…" (with $TOKEN expanded). */
function shellWords(line: string, token: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? (m[2] !== undefined ? m[2].replaceAll("$TOKEN", token) : m[3]!));
}

describe("the README's Security section, as written", () => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;

  beforeAll(async () => {
    idp = await startIdentityProvider();
    // The identity provider is the test's; who is cluster admin is the README's.
    sw = await startSpillwayProcesses("all", { ...idp.env([]), SPILLWAY_CLUSTER_ADMINS: exported.SPILLWAY_CLUSTER_ADMINS! });
  });
  afterAll(async () => {
    await sw?.stop();
    await idp?.stop();
  });

  it("names the settings it documents", () => {
    expect(Object.keys(exported).sort()).toEqual(["SPILLWAY_AUTH_AUDIENCE", "SPILLWAY_AUTH_ISSUER", "SPILLWAY_AUTH_JWKS", "SPILLWAY_CLUSTER_ADMINS", "SPILLWAY_FILE_TARGET_ROOTS"]);
    expect(exported.SPILLWAY_CLUSTER_ADMINS).toBe("aaduser=alice@contoso.com");
  });

  it("lets the bootstrap admin grant roles and read the audit log with the commands shown", async () => {
    const token = await idp.userToken("alice@contoso.com");
    const lines = blocks.flatMap((b) => b.split("\n")).filter((l) => l.startsWith("grpcurl "));
    expect(lines).toHaveLength(4);
    const results: Record<string, JsonValue[]> = {};
    for (const line of lines) {
      const words = shellWords(line.trim(), token).slice(1);
      const { options, data, positional } = parseGrpcurlArgs(words);
      const [address, method] = positional;
      expect(address).toBe("127.0.0.1:50051");
      results[`${method!.split("/")[1]}#${Object.keys(results).length}`] = await grpcurl(sw.catalogAddress, method!, data, options);
    }
    const shown = Object.entries(results).find(([k]) => k.startsWith("ShowDatabasePrincipals"))![1][0] as { principals: Array<Record<string, string>> };
    expect(shown.principals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ role: "AllDatabasesAdmin", principalFqn: "aaduser=alice@contoso.com" }),
        expect.objectContaining({ role: "Database default Admin", principalFqn: "aaduser=bob@contoso.com", notes: "runs the exports", principalType: "AAD User" }),
        expect.objectContaining({
          role: "Database default Viewer",
          principalFqn: "aadapp=8c4d5a2b-0f3e-4a8e-9d1c-3f2b1a0e9d8c",
          principalType: "AAD Application",
          principalObjectId: "8c4d5a2b-0f3e-4a8e-9d1c-3f2b1a0e9d8c",
        }),
      ]),
    );
    const audit = Object.entries(results).find(([k]) => k.startsWith("ShowCommands"))![1][0] as { commands: Array<Record<string, string>> };
    expect(audit.commands.map((c) => [c.principal, c.commandType, c.state])).toEqual([
      ["aaduser=alice@contoso.com", "CatalogService/AddDatabasePrincipals", "Completed"],
      ["aaduser=alice@contoso.com", "CatalogService/AddDatabasePrincipals", "Completed"],
    ]);
  });

  it("refuses a call without a token, and gives Bob what the grant says", async () => {
    const noToken = await refusal(grpcurl(sw.catalogAddress, "spillway.catalog.v1.CatalogService/ListTables", "{}"));
    expect(noToken.code).toBe(ErrorCode.unauthenticated);
    const bob = { headers: [`authorization: Bearer ${await idp.userToken("bob@contoso.com")}`] };
    await grpcurl(sw.catalogAddress, "spillway.catalog.v1.CatalogService/CreateTable", '{"name":"Events","columns":[{"name":"Id","type":"long"}]}', bob);
    const dashboard = { headers: [`authorization: Bearer ${await idp.appToken("8c4d5a2b-0f3e-4a8e-9d1c-3f2b1a0e9d8c")}`] };
    const denied = await refusal(grpcurl(sw.catalogAddress, "spillway.catalog.v1.CatalogService/DropTable", '{"name":"Events"}', dashboard));
    expect(denied).toMatchObject({ code: ErrorCode.permissionDenied });
    expect(await grpcurl(sw.catalogAddress, "spillway.catalog.v1.CatalogService/ListTables", "{}", dashboard)).toEqual([
      { tables: [expect.objectContaining({ name: "Events" })] },
    ]);
  });
});
