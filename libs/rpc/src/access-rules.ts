import type { MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Requirement } from "@spillway/auth";

/** A public RPC: what the caller needs, and what else the server does around the call. */
export interface PublicRule<Req> {
  need: Requirement;
  /** The table (or external table) a table-level requirement is about. */
  table?: (request: Req) => string;
  /**
   * A second requirement, on the call's database, and why the call has it: a call whose
   * query reads the database's tables, say, besides the table it writes (`need`). Checked by
   * the call guard like `need`, so it holds however the call arrives (Kusto commands call
   * the RPC as Spillway, on the caller's behalf).
   */
  also?: { need: Requirement; because: string };
  /** Management calls are audited (SPEC §7): the object the call names, and the request as text with secrets masked. */
  audit?: { object: (request: Req) => string; text?: (request: Req) => string };
  /** Calls of this kind one principal may have in flight at once (CallLimits). */
  limit?: "query" | "ingest";
}

/**
 * Who may call an RPC, declared once per service next to its handlers (STYLE "a
 * declaration beats a hand-written check"): `internal` RPCs answer only other Spillway
 * services; `open` ones (health) anyone; the rest need an authenticated caller with the
 * rule's least role. The rpc server enforces the table; tests walk it.
 */
export type AccessRule<Req> = "internal" | "open" | PublicRule<Req>;

export type AccessTable<S> = S extends GenService<infer T extends GenServiceMethods>
  ? { [K in keyof T]: AccessRule<MessageShape<T[K]["input"]>> }
  : never;

/** Names of the internal RPCs of a service, as `Service/Method` (for tests and docs). */
export function internalRpcs(table: Record<string, AccessRule<never>>): string[] {
  return Object.entries(table).flatMap(([method, rule]) => (rule === "internal" ? [method] : []));
}
