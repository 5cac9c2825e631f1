import { randomUUID } from "node:crypto";
import { satisfies, type Caller, type Grants, type Requirement } from "@spillway/auth";
import { ErrorCode, redactSecrets, SpillwayError } from "@spillway/errors";
import { databaseName } from "@spillway/kusto";
import type { PublicRule } from "./access-rules.js";

export type { Caller };

/** Another Spillway service, or a call inside this process: trusted with everything. */
export const SPILLWAY_CALLER: Caller = { principal: "spillway", may: () => true };

export interface AuditRecord {
  /** One call's records share it: its InProgress record and the final one that replaces it. */
  commandId: string;
  startedOn: Date;
  durationMs: number;
  principal: string;
  commandType: string;
  database: string;
  object: string;
  state: "InProgress" | "Completed" | "Failed";
  failureReason: string;
  text: string;
}

export interface CallGuardOptions {
  /** The principal of a caller's `authorization` metadata; throws UNAUTHENTICATED. */
  authenticate(authorization: string | undefined): Promise<string>;
  /** What a principal holds in a database (the catalog's grants plus the cluster roles). */
  grantsOf(principal: string, database: string): Promise<Grants>;
  audit(record: AuditRecord): Promise<void>;
  /** Calls of each limited kind one principal may have in flight. */
  limits: { query: number; ingest: number };
  log?: (line: string) => void;
}

/**
 * An admitted call: its caller, and what must happen once it ends (the call's final audit
 * record is sent, not waited for: see CallGuard).
 */
export interface Admission {
  caller: Caller;
  finish(error: unknown): Promise<void>;
}

/** How long a stopping process waits for the audit outcomes still being sent. */
const DRAIN_LIMIT_MS = 5000;

const LIMIT_SETTING = { query: "--max-queries-per-principal", ingest: "--max-ingests-per-principal" } as const;

const REQUIREMENT_TITLE: Record<Requirement, string> = {
  databaseAdmin: "Database Admin",
  databaseUser: "Database User",
  databaseViewer: "Database Viewer",
  databaseMonitor: "Database Viewer, User or Monitor",
  tableAdmin: "Table Admin",
  tableIngestor: "Database Ingestor or Table Ingestor",
  tableMetadata: "Database Viewer, User or Monitor, or a role on the table",
  databaseUserOrTableAdmin: "Database User to create, Table Admin to alter",
  authenticated: "an authenticated caller",
};

/**
 * Authentication, authorization, per-principal limits and the audit of public calls
 * (SPEC §7), in one place the rpc server calls for every public RPC. A refused call never
 * reaches its handler, so it changes nothing.
 *
 * An admitted management call is recorded InProgress as it is admitted, beside its work, and
 * answers only once that record is written (or could not be: logged, as any audit write that
 * fails). Its outcome then replaces that record without the caller waiting for it (it was the
 * last 1.5 ms of a run asked for, bench #3). So a record left InProgress is a call whose
 * outcome was never written: cut off by a crash, or answered just before one (as Kusto's
 * .show commands shows a command under way). In one process the audit log takes records in
 * the order they are sent, so a caller's next read sees the outcome; from another process
 * (split services, several nodes) it may show InProgress for a moment. drain() waits, for a
 * while, for the outcomes still being sent before the process stops.
 */
export class CallGuard {
  private readonly inFlight = { query: new Map<string, number>(), ingest: new Map<string, number>() };
  private readonly outcomesSending = new Set<Promise<void>>();

  constructor(private readonly options: CallGuardOptions) {}

  async admit(rpc: string, rule: PublicRule<never>, request: unknown, authorization: string | undefined): Promise<Admission> {
    const principal = await this.options.authenticate(authorization);
    const database = databaseName((request as { database?: string }).database);
    const table = rule.table?.(request as never);
    const grants = await this.options.grantsOf(principal, database);
    const caller: Caller = { principal, may: (requirement, t) => satisfies(grants, requirement, t) };
    const startedOn = new Date();
    const audited = rule.audit;
    // The call's records share it: its outcome replaces its InProgress record.
    const commandId = randomUUID();
    const recordOf = (state: AuditRecord["state"], error?: unknown): AuditRecord => ({
      commandId,
      startedOn,
      durationMs: state === "InProgress" ? 0 : Date.now() - startedOn.getTime(),
      principal,
      commandType: rpc,
      database,
      object: safely(() => audited!.object(request as never)),
      state,
      failureReason: state === "Failed" ? redactSecrets(error instanceof Error ? error.message : String(error)) : "",
      text: redactSecrets(safely(() => (audited!.text ?? JSON.stringify)(request as never))),
    });
    const send = async (record: AuditRecord) => {
      try {
        await this.options.audit(record);
      } catch (err) {
        (this.options.log ?? console.error)(`spillway: could not record ${rpc} by ${principal} in the audit log: ${redactSecrets((err as Error).message)}`);
      }
    };
    const missing = missingRight(rule, caller, database, table);
    if (missing !== undefined) {
      const denied = new SpillwayError(ErrorCode.permissionDenied, `${principal} may not call ${rpc} on ${missing}`);
      if (audited) await send(recordOf("Failed", denied));
      throw denied;
    }
    const release = this.take(rule.limit, principal, rpc);
    const opening = audited ? recordOf("InProgress") : undefined;
    const opened = opening && send(opening);
    let finished = false;
    return {
      caller,
      finish: async (error) => {
        release();
        if (!opening || finished) return;
        finished = true;
        const outcome = recordOf(error === undefined ? "Completed" : "Failed", error);
        // Tracked from here, so drain() waits for a call still waiting for its first record too.
        // After it: the outcome must not be overtaken by the record it replaces.
        this.track(opened!.then(() => send(outcome)));
        await opened;
      },
    };
  }

  /**
   * Resolves once every outcome record sent so far has been written (or failed to be), or
   * after `limitMs`, saying how many were left: a store that does not answer must not keep
   * the process from stopping.
   */
  async drain(limitMs = DRAIN_LIMIT_MS): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (this.outcomesSending.size) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()))));
      const overdue = await Promise.race([Promise.all([...this.outcomesSending]).then(() => false), late]);
      clearTimeout(timer);
      if (overdue) {
        (this.options.log ?? console.error)(`spillway: ${this.outcomesSending.size} audit outcome(s) not written within ${limitMs} ms of stopping: those calls stay InProgress in the audit log`);
        return;
      }
    }
  }

  private track(sending: Promise<void>): void {
    this.outcomesSending.add(sending);
    void sending.finally(() => this.outcomesSending.delete(sending));
  }

  private take(kind: PublicRule<never>["limit"], principal: string, rpc: string): () => void {
    if (!kind) return () => {};
    const counts = this.inFlight[kind];
    const limit = this.options.limits[kind];
    const now = counts.get(principal) ?? 0;
    if (now >= limit) {
      throw new SpillwayError(
        ErrorCode.resourceExhausted,
        `${principal} already has ${now} ${kind} calls in flight, the most one principal may have (${LIMIT_SETTING[kind]}); ${rpc} was refused, retry when one has finished`,
      );
    }
    counts.set(principal, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (counts.get(principal) ?? 1) - 1;
      if (left > 0) counts.set(principal, left);
      else counts.delete(principal);
    };
  }
}

/** What the caller lacks for the call (its rule's requirement, then the rule's second one), as a refusal says it; undefined when nothing. */
function missingRight(rule: PublicRule<never>, caller: Caller, database: string, table: string | undefined): string | undefined {
  if (!caller.may(rule.need, table)) {
    const on = table === undefined ? `database '${database}'` : `table '${table}' of database '${database}'`;
    return `${on}: it needs ${REQUIREMENT_TITLE[rule.need]}`;
  }
  if (rule.also && !caller.may(rule.also.need)) return `database '${database}': ${rule.also.because}, which needs ${REQUIREMENT_TITLE[rule.also.need]} as well`;
  return undefined;
}

/** An audit field is never worth failing the call over. */
function safely(describe: () => string): string {
  try {
    return describe() ?? "";
  } catch {
    return "";
  }
}
