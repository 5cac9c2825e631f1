import type { QueryService } from "@spillway/proto";
import type { AccessTable } from "@spillway/rpc";

/** What a call whose query reads the database's tables needs besides its own rule. */
const READS_TABLES = { need: "databaseViewer", because: "its query reads the database's tables" } as const;

/** Who may call each QueryService RPC (SPEC §7); enforced by the rpc server. */
export const queryAccess: AccessTable<typeof QueryService> = {
  ingest: { need: "tableIngestor", table: (r) => r.table, limit: "ingest" },
  // Admitted on its first message, which names the table.
  ingestStream: { need: "tableIngestor", table: (r) => r.table, limit: "ingest" },
  query: { need: "databaseViewer", limit: "query" },
  ingestFromStorage: { need: "tableIngestor", table: (r) => r.table, limit: "ingest" },
  // It may create the table (set-or-append) or replace its rows (set-or-replace): Table Admin, as for altering it.
  // Its query reads the database's tables, as Spillway: the caller must be a reader of them too.
  ingestFromQuery: { need: "tableAdmin", table: (r) => r.table, also: READS_TABLES, limit: "ingest", audit: { object: (r) => r.table } },
  // SPEC §7: a one-shot export needs Table Admin (of the external table it writes), and its query reads the database's tables.
  exportToTable: { need: "tableAdmin", table: (r) => r.externalTable, also: READS_TABLES, audit: { object: (r) => r.externalTable } },
  showOperations: { need: "databaseMonitor" },
  showOperationDetails: { need: "databaseMonitor" },
  cancelOperation: { need: "databaseAdmin", audit: { object: (r) => r.operationId } },
  executeToSpool: "internal",
  discardSpool: "internal",
};
