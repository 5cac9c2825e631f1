import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DescService } from "@bufbuild/protobuf";
import { ErrorCode } from "@spillway/errors";
import { CatalogService, CursorService, QueryService } from "@spillway/proto";
import { createGrpcClient } from "@spillway/rpc";
import { catalogAccess } from "../../services/catalog/src/index.js";
import { cursorAccess } from "../../services/cursor/src/index.js";
import { queryAccess } from "../../services/query/src/index.js";
import { startIdentityProvider, type IdentityProvider } from "../support/identity-provider.js";
import { startSpillwayProcesses, type SpillwayUnderTest } from "../support/spillway-processes.js";

// Every public RPC × every role (SPEC §7): allowed, or PERMISSION_DENIED with nothing changed.

const ROLES = ["none", "dbAdmin", "dbUser", "dbViewer", "dbMonitor", "dbIngestor", "tableAdmin", "tableIngestor", "clusterViewer", "clusterAdmin"] as const;
type Role = (typeof ROLES)[number];

/** The user each role is played by; table roles are granted on each case's own table. */
const USER: Record<Role, string> = {
  none: "nobody",
  dbAdmin: "dba",
  dbUser: "dbu",
  dbViewer: "dbv",
  dbMonitor: "dbm",
  dbIngestor: "dbi",
  tableAdmin: "ta",
  tableIngestor: "ti",
  clusterViewer: "cv",
  clusterAdmin: "root",
};

const ALL: Role[] = [...ROLES];
const ANY_ROLE: Role[] = ROLES.filter((r) => r !== "none");
const ADMINS: Role[] = ["dbAdmin", "clusterAdmin"];
const TABLE_ADMINS: Role[] = ["dbAdmin", "tableAdmin", "clusterAdmin"];
const CREATORS: Role[] = ["dbAdmin", "dbUser", "clusterAdmin"];
const READERS: Role[] = ["dbAdmin", "dbUser", "dbViewer", "clusterViewer", "clusterAdmin"];
const MONITORS: Role[] = [...READERS, "dbMonitor"];
const INGESTORS: Role[] = ["dbAdmin", "dbIngestor", "tableAdmin", "tableIngestor", "clusterAdmin"];

type Request = (i: number, lake: string) => object;
interface Case {
  allowed: Role[];
  request: Request;
  /** The case needs its export enabled. */
  enabled?: boolean;
}

const columns = [
  { name: "Id", type: "long" },
  { name: "Key", type: "string" },
];
const lakeTable = (name: string, folder: string) => ({ name, kind: "blob", dataFormat: "csv", columns: [{ name: "Id", type: "long" }], connectionStrings: [`file://${folder}`] });
const exportOf = (i: number) => ({
  name: `X_${i}`,
  externalTable: `L_${i}`,
  query: `SELECT Id FROM T_${i}`,
  queryLanguage: "sql",
  over: [`T_${i}`],
  properties: { intervalBetweenRuns: { seconds: 3600n }, isDisabled: true },
});
const payload = Buffer.from("7,x\n");
/** An operation the cluster admin ran before the cases, for those that name one. */
const operation = { id: "" };

/** What each RPC needs, from SPEC §7; every public RPC of the access tables must be here. */
const EXPECTED: Record<string, Case> = {
  "CatalogService/createTable": { allowed: CREATORS, request: (i) => ({ name: `New_${i}`, columns }) },
  "CatalogService/getTable": { allowed: ANY_ROLE, request: (i) => ({ name: `T_${i}` }) },
  "CatalogService/listTables": { allowed: ALL, request: () => ({}) },
  "CatalogService/dropTable": { allowed: TABLE_ADMINS, request: (i) => ({ name: `T_${i}` }) },
  "CatalogService/setIngestionTimePolicy": { allowed: TABLE_ADMINS, request: (i) => ({ table: `T_${i}`, enabled: false }) },
  "CatalogService/createExternalTable": { allowed: CREATORS, request: (i, lake) => lakeTable(`NewLake_${i}`, join(lake, `new-${i}`)) },
  // Altering one that exists: Table Admin (a Database User may only create).
  "CatalogService/createOrAlterExternalTable": { allowed: TABLE_ADMINS, request: (i, lake) => lakeTable(`L_${i}`, join(lake, `altered-${i}`)) },
  // The table ingestor holds its role on T_i only, not on the external table L_i.
  "CatalogService/getExternalTable": { allowed: ANY_ROLE.filter((r) => r !== "tableIngestor"), request: (i) => ({ name: `L_${i}` }) },
  "CatalogService/listExternalTables": { allowed: ALL, request: () => ({}) },
  "CatalogService/dropExternalTable": { allowed: TABLE_ADMINS, request: (i) => ({ name: `L_${i}` }) },
  "CatalogService/createOrAlterContinuousExport": { allowed: ADMINS, request: (i) => exportOf(i) },
  "CatalogService/showContinuousExport": { allowed: MONITORS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/listContinuousExports": { allowed: MONITORS, request: () => ({}) },
  "CatalogService/showExportedArtifacts": { allowed: MONITORS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/showFailures": { allowed: MONITORS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/showRunHistory": { allowed: MONITORS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/backfillContinuousExport": { allowed: ADMINS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/resetContinuousExportCursor": { allowed: ADMINS, request: (i) => ({ name: `X_${i}`, cursor: "" }) },
  "CatalogService/enableContinuousExport": { allowed: ADMINS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/disableContinuousExport": { allowed: ADMINS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/dropContinuousExport": { allowed: ADMINS, request: (i) => ({ name: `X_${i}` }) },
  "CatalogService/runContinuousExportNow": { allowed: ADMINS, request: (i) => ({ name: `X_${i}` }), enabled: true },
  "CatalogService/addDatabasePrincipals": { allowed: ADMINS, request: (i) => ({ role: "viewers", principals: [`aaduser=new-${i}`] }) },
  "CatalogService/dropDatabasePrincipals": { allowed: ADMINS, request: (i) => ({ role: "viewers", principals: [`aaduser=extra-${i}`] }) },
  "CatalogService/showDatabasePrincipals": { allowed: MONITORS, request: () => ({}) },
  "CatalogService/addTablePrincipals": { allowed: TABLE_ADMINS, request: (i) => ({ table: `T_${i}`, role: "ingestors", principals: [`aaduser=new-${i}`] }) },
  "CatalogService/dropTablePrincipals": { allowed: TABLE_ADMINS, request: (i) => ({ table: `T_${i}`, role: "ingestors", principals: ["aaduser=ti"] }) },
  "CatalogService/showTablePrincipals": { allowed: ANY_ROLE, request: (i) => ({ table: `T_${i}` }) },
  "CatalogService/showCommands": { allowed: ALL, request: () => ({}) },
  "QueryService/ingest": { allowed: INGESTORS, request: (i) => ({ table: `T_${i}`, format: "csv", payload }) },
  "QueryService/ingestStream": { allowed: INGESTORS, request: (i) => ({ table: `T_${i}`, format: "csv", payload, endOfPayload: true }) },
  "QueryService/ingestFromStorage": { allowed: INGESTORS, request: (i, lake) => ({ table: `T_${i}`, format: "csv", uris: [`file://${join(lake, "source.csv")}`] }) },
  // It may replace a table's rows (set-or-replace) or create one: Table Admin, whatever the mode;
  // and its query reads the database's tables: a reader of the database as well.
  "QueryService/ingestFromQuery": { allowed: ADMINS, request: (i) => ({ table: `T_${i}`, query: `SELECT Id, Key FROM T_${i}`, mode: "append" }) },
  "QueryService/query": { allowed: READERS, request: (i) => ({ query: `SELECT count(*) AS n FROM T_${i}`, queryLanguage: "sql" }) },
  // SPEC §7: a one-shot export needs Table Admin of the external table it writes, and to read the database (its query runs as Spillway).
  "QueryService/exportToTable": { allowed: ADMINS, request: (i) => ({ externalTable: `L_${i}`, query: `SELECT Id FROM T_${i}` }) },
  "QueryService/showOperations": { allowed: MONITORS, request: () => ({}) },
  "QueryService/showOperationDetails": { allowed: MONITORS, request: () => ({ operationId: operation.id }) },
  "QueryService/cancelOperation": { allowed: ADMINS, request: () => ({ operationId: operation.id }) },
  "CursorService/getCurrentCursor": { allowed: READERS, request: () => ({}) },
};

const SERVICES: Array<[DescService, Record<string, unknown>]> = [
  [CatalogService, catalogAccess],
  [QueryService, queryAccess],
  [CursorService, cursorAccess],
];

type AnyClient = Record<string, (request: unknown) => unknown> & { close(): void };

/** Calls `method` however it streams; resolves to the answer, or rejects with the error. */
async function call(client: AnyClient, service: DescService, method: string, request: object): Promise<unknown> {
  const kind = service.methods.find((m) => m.localName === method)!.methodKind;
  if (kind === "server_streaming") {
    const out: unknown[] = [];
    for await (const m of client[method]!(request) as AsyncIterable<unknown>) out.push(m);
    return out;
  }
  if (kind === "client_streaming") return client[method]!([request]);
  return client[method]!(request);
}

const json = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));

describe("who may call what: every public RPC × every role", () => {
  let idp: IdentityProvider;
  let sw: SpillwayUnderTest;
  let lake: string;
  const clients = new Map<string, AnyClient>();
  const clientOf = (service: DescService, role: Role) => clients.get(`${service.typeName}/${role}`)!;
  const root = () => clientOf(CatalogService, "clusterAdmin") as unknown as ReturnType<typeof createGrpcClient<typeof CatalogService>>;
  const rootQuery = () => clientOf(QueryService, "clusterAdmin") as unknown as ReturnType<typeof createGrpcClient<typeof QueryService>>;

  beforeAll(async () => {
    idp = await startIdentityProvider();
    lake = mkdtempSync(join(tmpdir(), "spillway-matrix-"));
    sw = await startSpillwayProcesses("all", {
      ...idp.env(["aaduser=root"]),
      SPILLWAY_CLUSTER_VIEWERS: "aaduser=cv",
      SPILLWAY_FILE_TARGET_ROOTS: lake,
    });
    for (const role of ROLES) {
      const token = await idp.userToken(USER[role], { expiresIn: 3600 });
      for (const [service] of SERVICES) clients.set(`${service.typeName}/${role}`, createGrpcClient(service, sw.catalogAddress, { token }) as unknown as AnyClient);
    }
    const grants: Array<[string, Role]> = [
      ["admins", "dbAdmin"],
      ["users", "dbUser"],
      ["viewers", "dbViewer"],
      ["monitors", "dbMonitor"],
      ["ingestors", "dbIngestor"],
    ];
    for (const [role, who] of grants) await root().addDatabasePrincipals({ role, principals: [`aaduser=${USER[who]}`] });
    writeFileSync(join(lake, "source.csv"), "8,y\n");
    await root().createTable({ name: "Ops", columns });
    await root().createExternalTable(lakeTable("OpsLake", join(lake, "ops")));
    operation.id = (await rootQuery().exportToTable({ externalTable: "OpsLake", query: "SELECT Id FROM Ops" })).operationId;
  }, 120_000);

  afterAll(async () => {
    clients.forEach((c) => c.close());
    await sw?.stop();
    await idp?.stop();
    rmSync(lake, { recursive: true, force: true });
  });

  /** Case i's own table, external table, export and grants, so no case sees another's changes. */
  async function fixture(i: number, enabled: boolean): Promise<void> {
    await root().createTable({ name: `T_${i}`, columns });
    await rootQuery().ingest({ table: `T_${i}`, format: "csv", payload: Buffer.from("1,a\n") });
    await root().createExternalTable(lakeTable(`L_${i}`, join(lake, `l-${i}`)));
    await root().createOrAlterContinuousExport(exportOf(i) as never);
    await root().addTablePrincipals({ table: `T_${i}`, role: "admins", principals: ["aaduser=ta"] });
    await root().addTablePrincipals({ table: `T_${i}`, role: "ingestors", principals: ["aaduser=ti"] });
    await root().addTablePrincipals({ table: `L_${i}`, role: "admins", principals: ["aaduser=ta"] });
    await root().addDatabasePrincipals({ role: "viewers", principals: [`aaduser=extra-${i}`] });
    // With an hour between runs, the scheduler leaves it alone for the length of the case.
    if (enabled) await root().enableContinuousExport({ name: `X_${i}` });
  }

  /** Everything case i could have changed, as the cluster admin sees it. */
  async function state(i: number): Promise<string> {
    const outcome = async (p: Promise<unknown>) => p.then((v) => json(v), (e: { code: number }) => `error ${e.code}`);
    const q = async () => {
      const out: unknown[] = [];
      for await (const m of rootQuery().query({ query: `SELECT count(*) AS n FROM T_${i}`, queryLanguage: "sql" })) out.push(m);
      return out;
    };
    return json({
      tables: (await root().listTables({})).tables.map((t) => t.name).sort(),
      table: await outcome(root().getTable({ name: `T_${i}` })),
      externalTables: (await root().listExternalTables({})).externalTables.map((t) => t.name).sort(),
      externalTable: await outcome(root().getExternalTable({ name: `L_${i}` })),
      exports: (await root().listContinuousExports({})).exports.map((e) => e.name).sort(),
      export: await outcome(root().showContinuousExport({ name: `X_${i}` })),
      databasePrincipals: await outcome(root().showDatabasePrincipals({})),
      tablePrincipals: await outcome(root().showTablePrincipals({ table: `T_${i}` })),
      lakePrincipals: await outcome(root().showTablePrincipals({ table: `L_${i}` })),
      rows: await outcome(q()),
    });
  }

  it("covers every public RPC the access tables declare", () => {
    const declared = SERVICES.flatMap(([service, access]) =>
      Object.entries(access)
        .filter(([, rule]) => rule !== "internal" && rule !== "open")
        .map(([method]) => `${service.name}/${method}`),
    );
    expect(Object.keys(EXPECTED).sort()).toEqual(declared.sort());
  });

  it("allows exactly what SPEC §7 allows; a refused call changes nothing", async () => {
    let i = 0;
    const mismatches: string[] = [];
    let refusedCount = 0;
    for (const [service] of SERVICES) {
      for (const method of service.methods.map((m) => m.localName)) {
        const expected = EXPECTED[`${service.name}/${method}`];
        if (!expected) continue;
        for (const role of ROLES) {
          i++;
          await fixture(i, expected.enabled ?? false);
          const allowed = expected.allowed.includes(role);
          const before = allowed ? "" : await state(i);
          const result = await call(clientOf(service, role), service, method, expected.request(i, lake)).then(
            () => undefined,
            (e: { code: number; message: string }) => e,
          );
          const where = `${service.name}/${method} as ${role}`;
          if (allowed) {
            if (result?.code === ErrorCode.permissionDenied || result?.code === ErrorCode.unauthenticated) mismatches.push(`${where}: refused (${result.message})`);
            // The requests are valid: whoever may make them sees them succeed.
            else if (result) mismatches.push(`${where}: allowed but failed with ${result.code}: ${result.message}`);
          } else {
            refusedCount++;
            if (result?.code !== ErrorCode.permissionDenied) mismatches.push(`${where}: expected PERMISSION_DENIED, got ${result ? `${result.code} ${result.message}` : "success"}`);
            else if (!result.message.includes(`aaduser=${USER[role]}`)) mismatches.push(`${where}: the refusal does not name the caller: ${result.message}`);
            const after = await state(i);
            if (after !== before) mismatches.push(`${where}: refused, but the state changed`);
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(refusedCount).toBeGreaterThan(100);
  }, 600_000);

  it("shows in listings only what the caller may see", async () => {
    const tablesOf = async (role: Role) => ((await call(clientOf(CatalogService, role), CatalogService, "listTables", {})) as { tables: Array<{ name: string }> }).tables.map((t) => t.name);
    expect(await tablesOf("none")).toEqual([]);
    const all = await tablesOf("clusterAdmin");
    expect(await tablesOf("dbMonitor")).toEqual(all);
    // A table ingestor sees the tables it holds a role on, and no other.
    await root().createTable({ name: "Unrelated", columns });
    expect(await tablesOf("tableIngestor")).not.toContain("Unrelated");
    expect((await tablesOf("tableIngestor")).length).toBeGreaterThan(0);
    const external = async (role: Role) => ((await call(clientOf(CatalogService, role), CatalogService, "listExternalTables", {})) as { externalTables: unknown[] }).externalTables.length;
    expect(await external("none")).toBe(0);
    expect(await external("dbViewer")).toBeGreaterThan(0);
  });

  it("gives a table's creator Table Admin of it, as Kusto does", async () => {
    const user = clientOf(CatalogService, "dbUser") as unknown as ReturnType<typeof createGrpcClient<typeof CatalogService>>;
    await user.createTable({ name: "MadeByUser", columns });
    await user.setIngestionTimePolicy({ table: "MadeByUser", enabled: true });
    const rows = (await root().showTablePrincipals({ table: "MadeByUser" })).principals;
    expect(rows).toEqual([expect.objectContaining({ role: "Table default.MadeByUser Admin", principalFqn: "aaduser=dbu", principalType: "AAD User" })]);
    // Dropped and made anew by someone else, the table keeps none of its old grants.
    await user.dropTable({ name: "MadeByUser" });
    await root().createTable({ name: "MadeByUser", columns });
    expect((await root().showTablePrincipals({ table: "MadeByUser" })).principals.map((p) => p.principalFqn)).toEqual(["aaduser=root"]);
  });
});
