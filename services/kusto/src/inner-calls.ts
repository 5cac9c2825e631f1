import { create, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Caller, Requirement } from "@spillway/auth";
import { internal } from "@spillway/errors";
import { CatalogService, QueryService, type QueryResponse } from "@spillway/proto";
import type { AccessRule, Admission, PublicRule } from "@spillway/rpc";
import type { CallAdmitter, KustoPeers, PeerAccess } from "./peer-clients.js";

type MethodsOf<S> = S extends GenService<infer T extends GenServiceMethods> ? T : never;
type UnaryOf<T> = { [K in keyof T]: T[K] extends { methodKind: "unary" } ? K : never }[keyof T] & string;

type CatalogMethods = MethodsOf<typeof CatalogService>;
export type CatalogRpc = UnaryOf<CatalogMethods>;
export type CatalogRequest<M extends CatalogRpc> = MessageInitShape<CatalogMethods[M]["input"]>;
export type CatalogResponse<M extends CatalogRpc> = MessageShape<CatalogMethods[M]["output"]>;

type QueryMethods = MethodsOf<typeof QueryService>;
export type QueryRpc = UnaryOf<QueryMethods>;
export type QueryServiceRequest<M extends QueryRpc> = MessageInitShape<QueryMethods[M]["input"]>;
export type QueryServiceResponse<M extends QueryRpc> = MessageShape<QueryMethods[M]["output"]>;
export type QueryRequestInit = MessageInitShape<QueryMethods["query"]["input"]>;

/** An RPC answered as the caller: its answer, and what the caller may do in the call's database. */
export interface Answer<R> {
  response: R;
  caller: Caller;
}

/**
 * The calls a command or query makes, seen as the RPCs they are. What the command needs
 * comes from the called RPC's own access rule, admitted for the Execute caller; what it
 * only reads to be understood or shown comes from `asSpillway`, as Spillway itself.
 */
export interface CommandCalls {
  /**
   * A CatalogService RPC made on the caller's behalf: admitted, limited and audited as if
   * called directly. `alters` says whether a create-or-alter RPC is to alter an object that
   * exists, which narrows what it needs (see `narrowed`).
   */
  catalog<M extends CatalogRpc>(method: M, request: CatalogRequest<M>, options?: { alters?: boolean }): Promise<Answer<CatalogResponse<M>>>;
  /** A unary QueryService RPC (Ingest, ExportToTable, ShowOperations, ...) on the caller's behalf, admitted as if called directly. */
  queryService<M extends QueryRpc>(method: M, request: QueryServiceRequest<M>): Promise<Answer<QueryServiceResponse<M>>>;
  /** QueryService/Query on the caller's behalf; admitted before the first message, released after the last. */
  query(request: QueryRequestInit): AsyncIterable<QueryResponse>;
  /** Whether the caller could make a CatalogService call (to show in a listing only what it may see one by one). */
  may<M extends CatalogRpc>(caller: Caller, method: M, request: CatalogRequest<M>): boolean;
  /**
   * The catalog as Spillway itself calls it, with no caller's rights: what a command shows
   * once it ran, and the grant Kusto gives a table's creator; never what a command reads
   * before the caller is admitted to its RPC.
   */
  asSpillway: KustoPeers["catalog"];
}

function publicRule(rpc: string, rule: AccessRule<never>): PublicRule<never> {
  // Commands map only onto public RPCs; an internal one here is a bug of the mapping.
  if (typeof rule === "string") throw internal(`${rpc} is not a public RPC, so no Kusto command runs as it`);
  return rule;
}

/**
 * What a create-or-alter needs once it is known whether it alters: `databaseUserOrTableAdmin`
 * is a create (Database User) or an alter (Table Admin of it), and the service that knows
 * which narrows it (libs/auth roles.ts). The RPC, called by Spillway on the caller's behalf,
 * cannot narrow for the caller, so the command does, before the call.
 */
export function narrowed(need: Requirement, alters: boolean | undefined): Requirement {
  if (need !== "databaseUserOrTableAdmin" || alters === undefined) return need;
  return alters ? "tableAdmin" : "databaseUser";
}

/** CommandCalls over the peers' clients, admitted by CallAdmitter for one principal. */
export function commandCalls(peers: KustoPeers, access: PeerAccess, admitter: CallAdmitter, principal: string): CommandCalls {
  async function admitted<R>(rpc: string, rule: AccessRule<never>, request: unknown, call: () => Promise<R>): Promise<Answer<R>> {
    const admission = await admitter.admit(rpc, publicRule(rpc, rule), request, principal);
    try {
      const response = await call();
      await admission.finish(undefined);
      return { response, caller: admission.caller };
    } catch (err) {
      await admission.finish(err);
      throw err;
    }
  }

  return {
    catalog(method, init, options = {}) {
      const desc = CatalogService.method[method];
      const rpc = `${CatalogService.name}/${desc.name}`;
      const request = create(desc.input, init as never);
      const call = peers.catalog[method] as unknown as (r: typeof request) => Promise<never>;
      const rule = publicRule(rpc, access.catalog[method] as AccessRule<never>);
      return admitted(rpc, { ...rule, need: narrowed(rule.need, options.alters) }, request, () => call(request));
    },
    queryService(method, init) {
      const desc = QueryService.method[method];
      const request = create(desc.input, init as never);
      const call = peers.query[method] as unknown as (r: typeof request) => Promise<never>;
      return admitted(`${QueryService.name}/${desc.name}`, access.query[method] as AccessRule<never>, request, () => call(request));
    },
    async *query(init) {
      const desc = QueryService.method.query;
      const request = create(desc.input, init);
      const rpc = `${QueryService.name}/${desc.name}`;
      const admission: Admission = await admitter.admit(rpc, publicRule(rpc, access.query.query as AccessRule<never>), request, principal);
      let failure: unknown;
      try {
        yield* peers.query.query(request);
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        // Also when the reader stops early: the call no longer counts against the caller's limit.
        await admission.finish(failure);
      }
    },
    may(caller, method, init) {
      const rule = access.catalog[method] as AccessRule<never>;
      if (typeof rule === "string") return false;
      const request = create(CatalogService.method[method].input, init as never);
      return caller.may(rule.need, rule.table?.(request as never)) && (!rule.also || caller.may(rule.also.need));
    },
    asSpillway: peers.catalog,
  };
}
