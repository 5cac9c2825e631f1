import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@spillway/errors";
import { CatalogService, QueryService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { csv, refusal } from "../support/fixtures.js";
import { startIdentityProvider, type IdentityProvider } from "../support/identity-provider.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

const ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFrLTEyMzQ1Njc4OTA=";

describe("audit of management calls and per-principal limits (SPEC §7)", () => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;
  let lake: string;
  const as = async (user: string) => {
    const token = await idp.userToken(user);
    return {
      catalog: createGrpcClient(CatalogService, sw.catalogAddress, { token }),
      query: createGrpcClient(QueryService, sw.queryAddress, { token }),
    };
  };
  let root: Awaited<ReturnType<typeof as>>;
  let dba: Awaited<ReturnType<typeof as>>;
  let viewer: Awaited<ReturnType<typeof as>>;
  let nobody: Awaited<ReturnType<typeof as>>;

  beforeAll(async () => {
    idp = await startIdentityProvider();
    lake = mkdtempSync(join(tmpdir(), "spillway-audit-"));
    sw = await startSpillwayProcesses("all", {
      ...idp.env(["aaduser=root"]),
      SPILLWAY_FILE_TARGET_ROOTS: lake,
      SPILLWAY_MAX_QUERIES_PER_PRINCIPAL: "1",
      SPILLWAY_MAX_INGESTS_PER_PRINCIPAL: "1",
      SPILLWAY_MAX_QUERY_RESULT_ROWS: "5",
      SPILLWAY_QUERY_TIMEOUT: "3s",
    });
    [root, dba, viewer, nobody] = await Promise.all([as("root"), as("dba"), as("viewer"), as("nobody")]);
    await root.catalog.addDatabasePrincipals({ role: "admins", principals: ["aaduser=dba"], notes: "the team's admin" });
    await root.catalog.addDatabasePrincipals({ role: "viewers", principals: ["aaduser=viewer"] });
    await dba.catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }] });
    await dba.query.ingest({ table: "Events", format: "csv", payload: csv(Array.from({ length: 400 }, (_, i) => [i])) });
  });
  afterAll(async () => {
    for (const c of [root, dba, viewer, nobody]) {
      c?.catalog.close();
      c?.query.close();
    }
    await sw?.stop();
    await idp?.stop();
    rmSync(lake, { recursive: true, force: true });
  });

  it("records who did what, when and how it ended, with secrets masked; database admins see all, others their own", async () => {
    await dba.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "csv",
      columns: [{ name: "Id", type: "long" }],
      connectionStrings: [`http://127.0.0.1:1/devstoreaccount1/lake;${ACCOUNT_KEY}`],
    });
    await refusal(dba.catalog.dropTable({ name: "NoSuchTable" }));
    await refusal(nobody.catalog.dropTable({ name: "Events" }));
    await viewer.catalog.listTables({});
    for await (const _ of viewer.query.query({ query: "SELECT count(*) FROM Events", queryLanguage: "sql" }));

    const { commands } = await dba.catalog.showCommands({});
    const seen = commands.map((c) => [c.principal, c.commandType, c.object, c.state]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ["aaduser=root", "CatalogService/AddDatabasePrincipals", "", "Completed"],
        ["aaduser=dba", "CatalogService/CreateTable", "Events", "Completed"],
        ["aaduser=dba", "CatalogService/CreateExternalTable", "Lake", "Completed"],
        ["aaduser=dba", "CatalogService/DropTable", "NoSuchTable", "Failed"],
        ["aaduser=nobody", "CatalogService/DropTable", "Events", "Failed"],
      ]),
    );
    // Each call is one record: its outcome replaced the InProgress record written as it was admitted.
    expect(commands.filter((c) => c.commandType === "CatalogService/CreateExternalTable")).toHaveLength(1);
    expect(commands.filter((c) => c.state === "InProgress")).toEqual([]);
    // Reads and queries are not management calls.
    expect(commands.some((c) => /ListTables|Query|ShowCommands/.test(c.commandType))).toBe(false);
    const denied = commands.find((c) => c.principal === "aaduser=nobody")!;
    expect(denied.failureReason).toMatch(/may not call CatalogService\/DropTable .* it needs Table Admin/);
    const created = commands.find((c) => c.commandType === "CatalogService/CreateExternalTable")!;
    expect(created.text).toContain("http://127.0.0.1:1/devstoreaccount1/lake;*******");
    expect(commands.map((c) => `${c.text} ${c.failureReason} ${c.object}`).join("\n")).not.toContain(ACCOUNT_KEY);
    expect(created.startedOn).toBeDefined();

    const own = (await viewer.catalog.showCommands({})).commands;
    expect(own).toEqual([]);
    const nobodys = (await nobody.catalog.showCommands({})).commands;
    expect(nobodys.map((c) => c.principal)).toEqual(["aaduser=nobody"]);
  });

  it("refuses a second query in flight for one principal, not for another, and stops a query at the timeout", async () => {
    // Far more than the 3 s timeout of work; holds this principal's one query slot meanwhile.
    const slow = (async () => {
      for await (const _ of viewer.query.query({ query: "SELECT count(*) FROM Events a, Events b, Events c, Events d WHERE a.Id + b.Id + c.Id + d.Id < 0", queryLanguage: "sql" }));
    })();
    const slowOutcome = slow.then(
      () => undefined,
      (e: { code: number; message: string }) => e,
    );
    // The slot is taken once the call is admitted; ask until the refusal shows it is.
    let second: { code: number; message: string } | undefined;
    for (let tries = 0; tries < 50 && second?.code !== ErrorCode.resourceExhausted; tries++) {
      await new Promise((r) => setTimeout(r, 50));
      second = await refusal((async () => {
        for await (const _ of viewer.query.query({ query: "SELECT 1 FROM Events LIMIT 1", queryLanguage: "sql" }));
      })()).catch(() => undefined);
    }
    expect(second).toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("--max-queries-per-principal") });
    const others: unknown[] = [];
    for await (const m of dba.query.query({ query: "SELECT count(*) AS n FROM Events", queryLanguage: "sql" })) others.push(m);
    expect(others.length).toBeGreaterThan(0);
    expect(await slowOutcome).toMatchObject({ code: ErrorCode.deadlineExceeded, message: expect.stringContaining("--query-timeout") });
    // The slot is free again.
    for await (const _ of viewer.query.query({ query: "SELECT 1 FROM Events LIMIT 1", queryLanguage: "sql" }));
  });

  it("refuses a result larger than the cap, naming the setting", async () => {
    const err = await refusal((async () => {
      for await (const _ of dba.query.query({ query: "SELECT Id FROM Events", queryLanguage: "sql" }));
    })());
    expect(err).toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("--max-query-result-rows") });
  });

  it("refuses a second ingestion in flight for one principal", async () => {
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    async function* slowStream() {
      yield { table: "Events", format: "csv", payload: Buffer.from("1\n") };
      await held;
      yield { payload: Buffer.from("2\n"), endOfPayload: true };
    }
    const first = dba.query.ingestStream(slowStream());
    let second: { code: number; message: string } | undefined;
    for (let tries = 0; tries < 50 && second?.code !== ErrorCode.resourceExhausted; tries++) {
      await new Promise((r) => setTimeout(r, 50));
      second = await refusal(dba.query.ingest({ table: "Events", format: "csv", payload: Buffer.from("3\n") })).catch(() => undefined);
    }
    expect(second).toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("--max-ingests-per-principal") });
    finish();
    expect((await first).rowCount).toBe(2n);
  });
});
