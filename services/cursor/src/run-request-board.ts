import { randomUUID } from "node:crypto";
import { ErrorCode, SpillwayError } from "@spillway/errors";

export interface RunRequest {
  requestId: string;
  database: string;
  name: string;
  /** The W3C trace context of the asking call. */
  traceparent: string;
  tracestate: string;
}

interface Waiting<O> {
  request: RunRequest;
  resolve(outcome: O): void;
  reject(err: unknown): void;
  /** The watcher running it, while one does. */
  takenBy?: symbol;
  /** Refuses it should no watcher take it in time (again, once handed back); cleared once it ends. */
  pickUp?: NodeJS.Timeout;
  /** A watcher took it and stopped watching before completing it: its run may have gone ahead. */
  handedBack?: boolean;
}

/**
 * Runs asked for by RunContinuousExportNow, passed from the catalog to the scheduler
 * through the cursor service, which both depend on (DESIGN "Scale-out": the module graph
 * is a tree). A scheduler watches for requests and completes them; a request whose
 * watcher goes away before completing it goes to the next watcher, and one that no
 * scheduler takes within `pickUpMs` is refused as UNAVAILABLE.
 */
export class RunRequestBoard<O> {
  private readonly waiting = new Map<string, Waiting<O>>();
  private readonly watchers = new Map<symbol, () => void>();

  constructor(private readonly pickUpMs = 10_000) {}

  /** Asks for a run; resolves with its outcome once a scheduler completes it. */
  request(database: string, name: string, trace: { traceparent?: string; tracestate?: string } = {}): Promise<O> {
    const request = { requestId: randomUUID(), database, name, traceparent: trace.traceparent ?? "", tracestate: trace.tracestate ?? "" };
    return new Promise<O>((resolve, reject) => {
      const entry: Waiting<O> = { request, resolve, reject };
      this.waiting.set(request.requestId, entry);
      this.awaitPickUp(entry);
      this.wake();
    });
  }

  /** The requests no watcher holds, as they come, until `signal` aborts; those left unfinished then go back. */
  async *watch(signal: AbortSignal): AsyncIterable<RunRequest> {
    const me = Symbol("watcher");
    let wakeUp: () => void = () => {};
    this.watchers.set(me, () => wakeUp());
    // The abort wakes the wait under way. Not a race with a promise of the abort: each wait
    // would add a reaction to it that lives as long as the watcher, one per request.
    const onAbort = () => wakeUp();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const next = [...this.waiting.values()].find((w) => !w.takenBy);
        if (next) {
          next.takenBy = me;
          yield next.request;
          continue;
        }
        await new Promise<void>((resolve) => (wakeUp = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.watchers.delete(me);
      for (const w of this.waiting.values()) {
        if (w.takenBy !== me) continue;
        w.takenBy = undefined;
        w.handedBack = true;
        // Its first wait may be over long since: another scheduler has as long again to take it.
        this.awaitPickUp(w);
      }
      this.wake();
    }
  }

  /** Ends a request with its outcome, or with the error that kept it from running. */
  complete(requestId: string, result: { outcome: O } | { error: unknown }): void {
    const entry = this.waiting.get(requestId);
    if (!entry) return;
    this.waiting.delete(requestId);
    // Else it would hold the request and its outcome for the rest of pickUpMs.
    clearTimeout(entry.pickUp);
    if ("outcome" in result) entry.resolve(result.outcome);
    else entry.reject(result.error);
  }

  /** Refuses `entry` as UNAVAILABLE unless a watcher holds it pickUpMs from now. */
  private awaitPickUp(entry: Waiting<O>): void {
    clearTimeout(entry.pickUp);
    const { requestId, name } = entry.request;
    entry.pickUp = setTimeout(() => {
      if (entry.takenBy || !this.waiting.has(requestId)) return;
      this.waiting.delete(requestId);
      const seconds = this.pickUpMs / 1000;
      entry.reject(
        new SpillwayError(
          ErrorCode.unavailable,
          entry.handedBack
            ? `the scheduler running '${name}' stopped before it answered, and no other took the run within ${seconds} s; the run may have gone ahead (see the export's run history)`
            : `no scheduler took the run of '${name}' within ${seconds} s; is the scheduler running?`,
        ),
      );
    }, this.pickUpMs);
    entry.pickUp.unref();
  }

  private wake(): void {
    for (const wake of this.watchers.values()) wake();
  }
}
