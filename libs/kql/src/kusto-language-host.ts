import { Worker } from "node:worker_threads";
import type { KqlSchema } from "./kql-schema.js";
import type { Analysis, WorkerReply, WorkerRequest, WorkerWarm } from "./worker-protocol.js";

export interface WarmUp {
  /** Milliseconds from creating the host to the worker having analyzed its first query. */
  millis: number;
  /** The worker process's resident set size then (the whole process: threads share it). */
  rssBytes: number;
}

/**
 * Owns the worker thread that runs Microsoft's parser. It starts warming at once;
 * analyses wait for it.
 */
export class KustoLanguageHost {
  readonly warm: Promise<WarmUp>;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(d: Analysis): void; reject(e: Error): void }>();
  private nextId = 1;
  private failure: Error | undefined;

  constructor() {
    const started = performance.now();
    this.worker = startWorker(new URL("./kusto-language-worker" + extensionOfThisModule(), import.meta.url));
    this.worker.unref();
    this.warm = new Promise<WarmUp>((resolve, reject) => {
      const onMessage = (message: WorkerWarm | WorkerReply) => {
        if ("warm" in message) {
          resolve({ millis: performance.now() - started, rssBytes: message.rss });
          return;
        }
        const waiter = this.pending.get(message.id);
        if (!waiter) return;
        this.pending.delete(message.id);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new Error(`Kusto parser failed: ${message.error}`));
      };
      this.worker.on("message", onMessage);
      this.worker.on("error", (e) => this.fail(e, reject));
      this.worker.on("exit", (code) => this.fail(new Error(`Kusto parser worker exited (code ${code})`), reject));
    });
    // Callers that never analyze must not see an unhandled rejection.
    this.warm.catch(() => undefined);
  }

  async analyze(text: string, schema: KqlSchema): Promise<Analysis> {
    await this.warm;
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const request: WorkerRequest = { id, text, schema };
    return new Promise<Analysis>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Only waiting callers keep the process alive.
      this.worker.ref();
      this.worker.postMessage(request);
    }).finally(() => {
      if (this.pending.size === 0) this.worker.unref();
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error("Kusto parser closed");
    await this.worker.terminate();
  }

  private fail(error: Error, rejectWarm: (e: Error) => void): void {
    this.failure ??= error;
    rejectWarm(this.failure);
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }
}

function extensionOfThisModule(): string {
  return import.meta.url.endsWith(".ts") ? ".ts" : ".js";
}

function startWorker(entry: URL): Worker {
  if (!entry.pathname.endsWith(".ts")) return new Worker(entry);
  // Worker threads do not inherit tsx's module hooks (Node 20): register them in the
  // worker before importing its TypeScript entry.
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true });
}
