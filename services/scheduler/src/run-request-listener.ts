import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { context, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import { cursorText } from "@spillway/kusto";
import { errorMessage, notFound, SpillwayError } from "@spillway/errors";
import type { ExportSpec } from "@spillway/proto";
import type { ExportRunner, RunOutcome } from "./export-runner.js";
import type { SchedulerPeers } from "./peer-clients.js";

/**
 * Runs the exports RunContinuousExportNow asks for: it watches the cursor service for
 * requests and completes each with the run's outcome, or the error that kept it from
 * running. Watching again after a lost stream, until stopped.
 */
export class RunRequestListener {
  private readonly abort = new AbortController();
  private watching: Promise<void> | undefined;

  constructor(
    private readonly runner: Pick<ExportRunner, "runAsked">,
    private readonly peers: Pick<SchedulerPeers, "catalog" | "cursor">,
    private readonly log: (line: string) => void,
    /** Told of each run it ran: the scheduler times the export's next interval from it. */
    private readonly ran: (spec: ExportSpec, outcome: RunOutcome) => void = () => undefined,
  ) {}

  start(): void {
    this.watching = this.watch();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.watching;
  }

  private async watch(): Promise<void> {
    while (!this.abort.signal.aborted) {
      const requests = this.peers.cursor.watchRunRequests({})[Symbol.asyncIterator]();
      const stop = () => void requests.return?.();
      this.abort.signal.addEventListener("abort", stop, { once: true });
      try {
        for (let next = await requests.next(); !next.done; next = await requests.next()) {
          // Side by side: a long run must not hold up the next request.
          void this.serve(next.value);
        }
      } catch (err) {
        if (!this.abort.signal.aborted) this.log(`scheduler: watching for run requests failed (${errorMessage(err)}); watching again`);
      } finally {
        this.abort.signal.removeEventListener("abort", stop);
      }
      if (!this.abort.signal.aborted) await new Promise((r) => setTimeout(r, 500));
    }
  }

  private async serve(request: { requestId: string; database: string; name: string; traceparent: string; tracestate: string }): Promise<void> {
    let result: { outcome: RunOutcome; spec: ExportSpec } | { error: SpillwayError };
    // The run belongs to the trace of the RunContinuousExportNow that asked for it.
    const asked = propagation.extract(ROOT_CONTEXT, { traceparent: request.traceparent, tracestate: request.tracestate });
    try {
      result = await context.with(asked, async () => {
        const { specs } = await this.peers.catalog.listExportSpecs({ database: request.database, name: request.name });
        if (!specs[0]) throw notFound(`continuous export '${request.name}' does not exist in database '${request.database}'`);
        return { outcome: await this.runner.runAsked(specs[0]), spec: specs[0] };
      });
    } catch (err) {
      result = { error: SpillwayError.from(err) };
    }
    // Outside the request's trace: what the scheduler starts from here is not part of it.
    if ("outcome" in result) this.ran(result.spec, result.outcome);
    const completion =
      "outcome" in result
        ? { requestId: request.requestId, outcome: outcomeMessage(result.outcome) }
        : { requestId: request.requestId, errorCode: result.error.code, errorMessage: result.error.message };
    await this.peers.cursor.completeRunRequest(completion).catch((err) => this.log(`scheduler: could not report the run of '${request.name}': ${errorMessage(err)}`));
  }
}


function outcomeMessage(o: RunOutcome) {
  return {
    runId: o.runId,
    result: o.result,
    fromCursor: cursorText(o.from),
    toCursor: cursorText(o.to),
    artifacts: o.artifacts.map((a) => ({
      timestamp: timestampFromDate(a.timestamp),
      externalTableName: a.externalTable,
      path: a.path,
      numRecords: a.numRecords,
      sizeInBytes: a.sizeBytes,
    })),
    details: o.details,
  };
}
