import { randomUUID } from "node:crypto";
import { ErrorCode, notFound, SpillwayError } from "@spillway/errors";
import { databaseName } from "@spillway/kusto";
import type { ExportToTableRequest, Operation } from "@spillway/proto";
import type { QueryPeers } from "./peer-clients.js";

/** What an ExportToTable operation runs, as the ledger keeps it for the scheduler: no secrets, only names. */
export interface OneShotRequest {
  externalTable: string;
  query: string;
  queryLanguage: string;
  sizeLimit: string;
  parquetRowGroupSize: number;
}

const POLL_MS = 100;

/**
 * One-shot exports (SPEC §6a): checked here, then recorded as an operation in the ledger,
 * which a scheduler takes and runs through the same pipeline as a continuous run (query,
 * stage, journal, upload, commit: all its artifacts or none). A sync call waits for the end.
 */
export class OneShotExports {
  constructor(
    private readonly peers: Pick<QueryPeers, "catalog" | "cursor">,
    private readonly pollMs = POLL_MS,
  ) {}

  async exportToTable(req: ExportToTableRequest, signal: AbortSignal) {
    const database = databaseName(req.database);
    const properties = { sizeLimit: req.properties?.sizeLimit ?? 0n, parquetRowGroupSize: req.properties?.parquetRowGroupSize ?? 0 };
    // Planned now, so a bad query or target is refused before anything is recorded.
    await this.peers.catalog.planExport({ database, externalTable: req.externalTable, query: req.query, queryLanguage: req.queryLanguage, properties });
    const operationId = randomUUID();
    const request: OneShotRequest = { externalTable: req.externalTable, query: req.query, queryLanguage: req.queryLanguage, sizeLimit: properties.sizeLimit.toString(), parquetRowGroupSize: properties.parquetRowGroupSize };
    await this.peers.cursor.createOperation({ operationId, database, operation: "ExportToTable", requestJson: JSON.stringify(request) });
    if (req.async) return { operationId, artifacts: [] };
    const ended = await this.ended(database, operationId, signal);
    if (ended.state === "Completed") return { operationId, artifacts: (await this.peers.cursor.listArtifacts({ exportId: operationId })).artifacts };
    if (ended.state === "Canceled") throw new SpillwayError(ErrorCode.cancelled, `export to table '${req.externalTable}' (operation ${operationId}) was canceled: ${ended.status}`);
    throw new SpillwayError(ErrorCode.aborted, `export to table '${req.externalTable}' (operation ${operationId}) failed: ${ended.status}`);
  }

  async operations(databaseArg: string, operationId: string): Promise<Operation[]> {
    const database = databaseName(databaseArg);
    const { operations } = await this.peers.cursor.listOperations({ database, operationId });
    if (operationId && operations.length === 0) throw notFound(`operation '${operationId}' does not exist in database '${database}'`);
    return operations;
  }

  async details(databaseArg: string, operationId: string) {
    await this.operations(databaseArg, operationId || "(none)");
    return (await this.peers.cursor.listArtifacts({ exportId: operationId })).artifacts;
  }

  async cancel(databaseArg: string, operationId: string): Promise<Operation> {
    await this.operations(databaseArg, operationId || "(none)");
    return (await this.peers.cursor.requestOperationCancel({ operationId })).operation!;
  }

  /** Waits for the operation to end; a caller that goes away cancels it. */
  private async ended(database: string, operationId: string, signal: AbortSignal): Promise<Operation> {
    for (;;) {
      if (signal.aborted) {
        await this.peers.cursor.requestOperationCancel({ operationId }).catch(() => undefined);
        throw new SpillwayError(ErrorCode.cancelled, `the caller went away: operation ${operationId} was canceled`);
      }
      const [operation] = (await this.peers.cursor.listOperations({ database, operationId })).operations;
      if (operation && operation.state !== "InProgress") return operation;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }
}
