import { create, fromJson, toJson } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import type { Caller, DatabaseRole, Grants } from "@spillway/auth";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { QueryResponseSchema } from "@spillway/proto";
import { CallGuard } from "@spillway/rpc";
import { catalogAccess } from "../../catalog/src/index.js";
import { queryAccess } from "../../query/src/index.js";
import { isCommand, KustoExecutor } from "./kusto-executor.js";
import type { KustoPeers } from "./peer-clients.js";

describe("which texts are management commands", () => {
  it.each([
    [".show tables", true],
    ["  \n\t.create table T (a:long)", true],
    ["// the tables\n.show tables", true],
    ["// a\n  // b\n.show tables", true],
    ["Events | take 1", false],
    ["// .show tables\nEvents", false],
    ["print x = '.'", false],
    ["let t = 1; print t", false],
  ])("%j is a command: %s", (text, expected) => {
    expect(isCommand(text)).toBe(expected);
  });
});

const viewer = (principal: string): Caller => ({ principal, may: () => true });

describe("a KQL query through Execute", () => {
  /** QueryService/Query of a fake query service: the columns, then `batches` of rows. */
  function setup(roles: Record<string, DatabaseRole[]>, batches: unknown[][][], maxQueries = 1) {
    const asked: Array<{ query: string; queryLanguage: string; database: string }> = [];
    let open = 0;
    const query = {
      async *query(req: { query: string; queryLanguage: string; database: string }) {
        asked.push({ query: req.query, queryLanguage: req.queryLanguage, database: req.database });
        open++;
        try {
          yield create(QueryResponseSchema, { columns: [{ name: "Key", type: "string" }, { name: "N", type: "long" }] });
          for (const rows of batches) yield create(QueryResponseSchema, { rows: rows.map((r) => fromJson(ListValueSchema, r as never)) });
        } finally {
          open--;
        }
      },
    };
    const guard = new CallGuard({
      authenticate: async (p) => p!,
      grantsOf: async (p): Promise<Grants> => ({ cluster: undefined, database: new Set(roles[p] ?? []), tables: new Map() }),
      audit: async () => {},
      limits: { query: maxQueries, ingest: 1 },
    });
    const executor = new KustoExecutor({
      peers: { catalog: {} as KustoPeers["catalog"], query: query as unknown as KustoPeers["query"] },
      access: { catalog: catalogAccess, query: queryAccess },
      admitter: { admit: (rpc, rule, request, principal) => guard.admit(rpc, rule, request, principal) },
      kql: () => {
        throw new Error("a query is not parsed here: the query service does it");
      },
      renderer: () => Promise.reject(new Error("a query's rows are rendered by the query service")),
    });
    const execute = async (text: string, principal: string) => {
      const out: unknown[] = [];
      for await (const m of executor.execute({ database: "", text }, viewer(principal))) {
        out.push({ name: m.name, columns: m.columns, rows: (m.rows ?? []).map((r) => toJson(ListValueSchema, r as never)) });
      }
      return out;
    };
    return { executor, execute, asked, open: () => open };
  }

  it("runs as QueryService/Query in KQL and answers each batch as a result table message", async () => {
    const { execute, asked } = setup({ "aaduser=v": ["viewers"] }, [[["a", "9007199254740993"]], [["b", "2"]]]);
    const columns = [{ name: "Key", type: "string" }, { name: "N", type: "long" }];
    expect(await execute("Events | project Key, N", "aaduser=v")).toEqual([
      { name: "PrimaryResult", columns, rows: [["a", "9007199254740993"]] },
      { name: "PrimaryResult", columns, rows: [["b", "2"]] },
    ]);
    expect(asked).toEqual([{ query: "Events | project Key, N", queryLanguage: "kql", database: "default" }]);
  });

  it("answers an empty result with its columns", async () => {
    const { execute } = setup({ "aaduser=v": ["viewers"] }, []);
    expect(await execute("Events | take 0", "aaduser=v")).toEqual([{ name: "PrimaryResult", columns: [{ name: "Key", type: "string" }, { name: "N", type: "long" }], rows: [] }]);
  });

  it("needs what QueryService/Query needs", async () => {
    const { execute, asked } = setup({ "aaduser=m": ["monitors"] }, []);
    const err = await execute("Events", "aaduser=m").then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SpillwayError);
    expect((err as SpillwayError).code).toBe(ErrorCode.permissionDenied);
    expect((err as SpillwayError).message).toContain("QueryService/Query");
    expect(asked).toEqual([]);
  });

  it("counts against the caller's query limit until its stream ends, even when the reader stops early", async () => {
    const { executor, execute, open } = setup({ "aaduser=v": ["viewers"] }, [[["a", "1"]], [["b", "2"]]], 1);
    for await (const _ of executor.execute({ database: "db", text: "Events" }, viewer("aaduser=v"))) {
      // A second query while this one runs is over the limit of one.
      const err = await execute("Events", "aaduser=v").then(() => undefined, (e: unknown) => e);
      expect((err as SpillwayError).code).toBe(ErrorCode.resourceExhausted);
      break;
    }
    expect(open()).toBe(0);
    expect(await execute("Events", "aaduser=v")).toHaveLength(2);
  });

  it("refuses an empty text", async () => {
    const { execute } = setup({}, []);
    const err = await execute("  \n", "aaduser=v").then(() => undefined, (e: unknown) => e);
    expect((err as SpillwayError).code).toBe(ErrorCode.invalidArgument);
  });
});
