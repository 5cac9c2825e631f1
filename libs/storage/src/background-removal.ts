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

interface Removed {
  path: string;
  what: string;
  error?: string;
}

/** One worker per process removes what every store hands it, one folder after another. */
let worker: Worker | undefined;
/** Removals handed over and not yet reported, by path: each promise settles when its folder is gone. */
const pending = new Map<string, Array<() => void>>();

function remover(): Worker {
  if (worker) return worker;
  const started = new Worker(SOURCE, { eval: true });
  // Not a reason to stay alive: what is left half removed at exit goes at the next start.
  started.unref();
  started.on("message", ({ path, what, error }: Removed) => {
    if (error) console.error(`spillway: a discarded ${what} folder (${path}) was not removed: ${error}`);
    for (const done of pending.get(path) ?? []) done();
    pending.delete(path);
  });
  const lost = (reason: string) => {
    if (worker !== started) return;
    worker = undefined;
    // Its queue is lost with it: what it held stays on disk until the next start's sweep.
    for (const [path, waiting] of pending) {
      console.error(`spillway: a discarded folder (${path}) was not removed: ${reason}`);
      for (const done of waiting) done();
    }
    pending.clear();
  };
  started.on("error", (err) => lost(err.message));
  started.on("exit", (code) => lost(`the removal thread ended (${code})`));
  worker = started;
  return started;
}

/**
 * Removes `path` (a folder no one uses any more, `what` naming it in a message should that
 * fail) in a thread of its own; the promise settles once it is gone or was given up on,
 * and never rejects: the caller has moved on.
 */
export function removeInBackground(path: string, what: string): Promise<void> {
  return new Promise((resolve) => {
    const waiting = pending.get(path);
    if (waiting) waiting.push(resolve);
    else pending.set(path, [resolve]);
    remover().postMessage({ path, what });
  });
}
