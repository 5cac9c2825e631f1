import { rm } from "node:fs/promises";
import { Worker } from "node:worker_threads";

/**
 * The worker's code: plain JavaScript, so it runs the same under tsx and built. Its calls are
 * synchronous, in its own thread: removing a folder asynchronously is a trip through libuv's
 * pool for every lstat, readdir, unlink and rmdir (about 19 for a run's spool and stage),
 * and those trips queue with every DuckDB statement of the runs going on (bench #3, #6).
 */
const SOURCE = `
const { parentPort } = require("node:worker_threads");
const { rmSync } = require("node:fs");
parentPort.on("message", ({ path, what }) => {
  try {
    rmSync(path, { recursive: true, force: true });
    parentPort.postMessage({ path, what });
  } catch (err) {
    parentPort.postMessage({ path, what, error: String((err && err.message) || err) });
  }
});
`;

interface Removal {
  path: string;
  what: string;
}

/** One worker per process removes what every store hands it, one folder after another. */
let worker: Worker | undefined;
/** Removals handed over and not yet reported, by path: each settles when its folder is gone or given up on. */
const pending = new Map<string, { what: string; done: Array<() => void> }>();

function said(path: string, what: string, error: string): void {
  console.error(`spillway: a discarded ${what} folder (${path}) was not removed: ${error}`);
}

function settle(path: string): void {
  for (const done of pending.get(path)?.done ?? []) done();
  pending.delete(path);
}

/** Without the worker: removed as before it, through libuv's pool; said when that fails too. */
function removeHere(path: string, what: string): Promise<void> {
  return rm(path, { recursive: true, force: true }).then(
    () => settle(path),
    (err: Error) => {
      said(path, what, err.message);
      settle(path);
    },
  );
}

function remover(): Worker {
  if (worker) return worker;
  const started = new Worker(SOURCE, { eval: true });
  // Not a reason to stay alive: what is left half removed at exit goes at the next start.
  started.unref();
  started.on("message", ({ path, what, error }: Removal & { error?: string }) => {
    if (error) said(path, what, error);
    settle(path);
  });
  const lost = () => {
    if (worker !== started) return;
    worker = undefined;
    // What it held is removed here instead; the next removal starts a worker again.
    for (const [path, { what }] of pending) void removeHere(path, what);
  };
  started.on("error", lost);
  started.on("exit", lost);
  worker = started;
  return started;
}

/**
 * Removes `path` (a folder no one uses any more; `what` names it should that fail) in a
 * thread of its own. The promise settles once it is gone or was given up on (and said), and
 * never rejects: the caller has moved on.
 */
export function removeInBackground(path: string, what: string): Promise<void> {
  return new Promise((resolve) => {
    const waiting = pending.get(path);
    if (waiting) {
      waiting.done.push(resolve);
      return;
    }
    pending.set(path, { what, done: [resolve] });
    try {
      remover().postMessage({ path, what } satisfies Removal);
    } catch {
      // No thread could be started (a limit on threads, say): removed here, as before.
      void removeHere(path, what);
    }
  });
}
