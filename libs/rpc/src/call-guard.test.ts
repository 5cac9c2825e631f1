import { describe, expect, it } from "vitest";
import type { Grants } from "@spillway/auth";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { CallGuard, type AuditRecord, type CallGuardOptions } from "./call-guard.js";

const viewerOf = (): Grants => ({ cluster: undefined, database: new Set(["viewers"]), tables: new Map() });

function guardWith(overrides: Partial<CallGuardOptions> = {}) {
  const audited: AuditRecord[] = [];
  const logged: string[] = [];
  const asked: string[] = [];
  const guard = new CallGuard({
    authenticate: async (authorization) => {
      if (authorization !== "Bearer good") throw new SpillwayError(ErrorCode.unauthenticated, "bad token");
      return "aaduser=alice";
    },
    grantsOf: async (principal, database) => (asked.push(`${principal}@${database}`), viewerOf()),
    audit: async (r) => void audited.push(r),
    limits: { query: 2, ingest: 1 },
    log: (line) => logged.push(line),
    ...overrides,
  });
  return { guard, audited, logged, asked };
}

describe("CallGuard", () => {
  it("authenticates before it looks up roles, and admits a caller with the role", async () => {
    const { guard, asked } = guardWith();
    await expect(guard.admit("Q/Query", { need: "databaseViewer" }, {}, "Bearer bad")).rejects.toMatchObject({ code: ErrorCode.unauthenticated });
    expect(asked).toEqual([]);
    const admission = await guard.admit("Q/Query", { need: "databaseViewer" }, { database: "sales" }, "Bearer good");
    expect(asked).toEqual(["aaduser=alice@sales"]);
    expect(admission.caller.principal).toBe("aaduser=alice");
    expect(admission.caller.may("databaseAdmin")).toBe(false);
  });

  it("refuses a caller without the role, naming caller, RPC and role, and audits the refusal of a management call", async () => {
    const { guard, audited } = guardWith();
    const rule = { need: "databaseAdmin" as const, audit: { object: (r: { name: string }) => r.name } };
    await expect(guard.admit("C/DropContinuousExport", rule as never, { name: "E1" }, "Bearer good")).rejects.toMatchObject({
      code: ErrorCode.permissionDenied,
      message: "aaduser=alice may not call C/DropContinuousExport on database 'default': it needs Database Admin",
    });
    expect(audited).toEqual([expect.objectContaining({ principal: "aaduser=alice", commandType: "C/DropContinuousExport", database: "default", object: "E1", state: "Failed" })]);
  });

  it("audits the outcome of an admitted management call with secrets redacted", async () => {
    const { guard, audited } = guardWith({ grantsOf: async () => ({ cluster: "admin", database: new Set(), tables: new Map() }) });
    const rule = { need: "databaseUser" as const, audit: { object: (r: { name: string }) => r.name } };
    const admission = await guard.admit("C/CreateExternalTable", rule as never, { name: "L", cs: "https://a.blob.core.windows.net/c?sv=1&sig=SECRETSIG" }, "Bearer good");
    await admission.finish(new Error("storage said no to https://a.blob.core.windows.net/c?sig=SECRETSIG"));
    await guard.drain();
    expect(audited).toHaveLength(2);
    expect(audited[0]).toMatchObject({ state: "InProgress", object: "L", failureReason: "" });
    expect(audited[1]).toMatchObject({ state: "Failed", object: "L", commandId: audited[0]!.commandId });
    expect(JSON.stringify(audited)).not.toContain("SECRETSIG");
  });

  it("records a management call InProgress as it is admitted, and sends its outcome under the same id without the call waiting for it", async () => {
    const sent: AuditRecord[] = [];
    let written!: () => void;
    const writing = new Promise<void>((resolve) => (written = resolve));
    const { guard } = guardWith({
      grantsOf: async () => ({ cluster: "admin", database: new Set(), tables: new Map() }),
      // The InProgress record is written at once; the outcome only when the test says.
      audit: (r) => (sent.push(r), r.state === "InProgress" ? Promise.resolve() : writing),
    });
    const admission = await guard.admit("C/RunContinuousExportNow", { need: "databaseAdmin", audit: { object: () => "E" } }, {}, "Bearer good");
    expect(sent.map((r) => r.state)).toEqual(["InProgress"]);
    await admission.finish(undefined);
    expect(sent.map((r) => r.state)).toEqual(["InProgress", "Completed"]);
    expect(sent[1]!.commandId).toBe(sent[0]!.commandId);
    let drained = false;
    const draining = guard.drain().then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(drained).toBe(false);
    written();
    await draining;
    // A second finish sends nothing more.
    await admission.finish(undefined);
    expect(sent).toHaveLength(2);
  });

  it("drains a call still waiting for its InProgress record, and gives up on outcomes the store never takes, saying so", async () => {
    let opened!: () => void;
    const sent: string[] = [];
    const { guard, logged } = guardWith({
      grantsOf: async () => ({ cluster: "admin", database: new Set(), tables: new Map() }),
      // The first call's InProgress record waits for the test; the second call's outcome never lands.
      audit: (r) => (sent.push(`${r.object} ${r.state}`), r.object === "A" && r.state === "InProgress" ? new Promise<void>((resolve) => (opened = resolve)) : r.object === "B" && r.state !== "InProgress" ? new Promise<void>(() => {}) : Promise.resolve()),
    });
    const a = await guard.admit("C/CreateTable", { need: "databaseUser", audit: { object: (r: { name: string }) => r.name } as never }, { name: "A" }, "Bearer good");
    void a.finish(undefined);
    let drained = false;
    const draining = guard.drain(10_000).then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(drained).toBe(false);
    opened();
    await draining;
    expect(sent).toEqual(["A InProgress", "A Completed"]);

    const b = await guard.admit("C/CreateTable", { need: "databaseUser", audit: { object: (r: { name: string }) => r.name } as never }, { name: "B" }, "Bearer good");
    await b.finish(undefined);
    await guard.drain(50);
    expect(logged).toEqual([expect.stringContaining("1 audit outcome(s) not written within 50 ms of stopping: those calls stay InProgress")]);
  });

  it("answers only once the call's InProgress record is written, and sends the outcome after it", async () => {
    const order: string[] = [];
    let opened!: () => void;
    const { guard } = guardWith({
      grantsOf: async () => ({ cluster: "admin", database: new Set(), tables: new Map() }),
      audit: (r) => (order.push(`send ${r.state}`), r.state === "InProgress" ? new Promise<void>((resolve) => (opened = () => (order.push("written InProgress"), resolve()))) : Promise.resolve()),
    });
    const admission = await guard.admit("C/CreateTable", { need: "databaseUser", audit: { object: () => "T" } }, {}, "Bearer good");
    const finishing = admission.finish(undefined).then(() => order.push("answered"));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(["send InProgress"]);
    opened();
    await finishing;
    expect(order).toEqual(["send InProgress", "written InProgress", "send Completed", "answered"]);
  });

  it("keeps per-principal limits, released when a call finishes", async () => {
    const { guard } = guardWith();
    const rule = { need: "databaseViewer" as const, limit: "query" as const };
    const a = await guard.admit("Q/Query", rule, {}, "Bearer good");
    await guard.admit("Q/Query", rule, {}, "Bearer good");
    await expect(guard.admit("Q/Query", rule, {}, "Bearer good")).rejects.toMatchObject({ code: ErrorCode.resourceExhausted, message: expect.stringContaining("--max-queries-per-principal") });
    await a.finish(undefined);
    await a.finish(undefined); // a second finish does not free a slot it does not hold
    await guard.admit("Q/Query", rule, {}, "Bearer good");
    await expect(guard.admit("Q/Query", rule, {}, "Bearer good")).rejects.toMatchObject({ code: ErrorCode.resourceExhausted });
  });

  it("logs an audit log that cannot be written instead of failing the call", async () => {
    const { guard, logged } = guardWith({
      grantsOf: async () => ({ cluster: "admin", database: new Set(), tables: new Map() }),
      audit: async () => {
        throw new Error("catalog unavailable");
      },
    });
    const admission = await guard.admit("C/CreateTable", { need: "databaseUser", audit: { object: () => "T" } }, {}, "Bearer good");
    await admission.finish(undefined);
    await guard.drain();
    // Its InProgress record and its outcome, each logged.
    expect(logged).toEqual([
      expect.stringContaining("could not record C/CreateTable by aaduser=alice in the audit log: catalog unavailable"),
      expect.stringContaining("could not record C/CreateTable by aaduser=alice in the audit log: catalog unavailable"),
    ]);
  });
});
