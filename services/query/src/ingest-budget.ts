import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";

/**
 * What one ingestion-by-reference call may still bring in, for all its sources together,
 * each counted as it comes (what a file claims to hold is never trusted):
 * - `readLeft`: bytes read from the sources as they are stored (a gzip file packed, a zip
 *   archive whole);
 * - `keptLeft`: bytes of the files DuckDB reads (a gzip file unpacked, an archive's files);
 * - `filesLeft`: files DuckDB reads (each is a scratch file).
 * A plain file counts in both byte budgets, a gzip file in each as what it is there.
 */
export interface IngestBudget {
  maxBytes: number;
  readLeft: number;
  keptLeft: number;
  maxFiles: number;
  filesLeft: number;
}

export function ingestBudget(maxBytes: number, maxFiles: number): IngestBudget {
  return { maxBytes, readLeft: maxBytes, keptLeft: maxBytes, maxFiles, filesLeft: maxFiles };
}

/** Takes one file out of `budget`, or refuses the call. */
export function takeFile(budget: IngestBudget): void {
  if (--budget.filesLeft < 0) throw new SpillwayError(ErrorCode.resourceExhausted, `the call names or unpacks more than the ${budget.maxFiles} files one call may ingest; nothing was ingested`);
}

/** Whether a path or URI ends in `.extension`, before any query or key (as Kusto reads a file's kind). */
const endsIn = (name: string, extension: string) => new RegExp(`\\.${extension}(?:[;?]|$)`, "i").test(name);
export const isGzip = (name: string) => endsIn(name, "gz");
export const isZip = (name: string) => endsIn(name, "zip");

/** A source that breaks off while read: storage's trouble, to try again. */
const sourceBrokeOff = (shown: string, err: unknown) => new SpillwayError(ErrorCode.unavailable, `'${shown}' could not be read to its end (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); try again`);

/** Counts what passes against one of `budget`'s byte budgets, failing the stream past it. */
function counter(budget: IngestBudget, which: "readLeft" | "keptLeft"): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      budget[which] -= chunk.length;
      if (budget[which] >= 0) return done(null, chunk);
      const what = which === "readLeft" ? "the sources of the call come to" : "the files of the call, gzip unpacked, come to";
      done(new SpillwayError(ErrorCode.resourceExhausted, `${what} more than the ${budget.maxBytes} bytes one call may ingest (--max-ingest-size); nothing was ingested`));
    },
  });
}

/**
 * Writes `source` to `localFile`, counting it against `budget` as it is read, and, unpacked
 * first when `gunzip`, as it is written: `kept` false for a file only read here (a zip
 * archive, whose files are counted as they come out of it). Fails with RESOURCE_EXHAUSTED
 * past the budget or when this machine's disk is full, INVALID_ARGUMENT for gzip data that
 * cannot be read, UNAVAILABLE when this machine cannot write otherwise, and as `readError`
 * says when the source fails (by default UNAVAILABLE: it broke off); `shown` names the
 * source in messages.
 */
export async function keepWithin(
  source: NodeJS.ReadableStream,
  localFile: string,
  shown: string,
  budget: IngestBudget,
  options: { gunzip: boolean; kept?: boolean; readError?: (err: unknown) => SpillwayError },
): Promise<void> {
  const steps: NodeJS.ReadWriteStream[] = [counter(budget, "readLeft")];
  const unpack = options.gunzip ? createGunzip() : undefined;
  if (unpack) steps.push(unpack);
  if (options.kept !== false) steps.push(counter(budget, "keptLeft"));
  try {
    await pipeline([source, ...steps, createWriteStream(localFile)]);
  } catch (err) {
    // The first failure, whichever stream it came from (the pipeline passes it to the others).
    const { code, syscall } = err as NodeJS.ErrnoException;
    if (err instanceof SpillwayError) throw err;
    if (code === "ENOSPC") throw new SpillwayError(ErrorCode.resourceExhausted, `the server has no disk space left to keep '${shown}'; nothing was ingested`);
    if (syscall && WRITING.has(syscall)) throw new SpillwayError(ErrorCode.unavailable, `could not keep '${shown}' here: ${code ?? (err as Error).message}; try again`);
    if (unpack && code?.startsWith("Z_")) throw invalidArgument(`'${shown}' is not gzip data that can be read: ${(err as Error).message}; nothing was ingested`);
    throw (options.readError ?? ((e) => sourceBrokeOff(shown, e)))(err);
  }
}

/** The system calls of writing a local file: their failures are this machine's, not the source's. */
const WRITING = new Set(["open", "write", "writev", "close", "fsync", "ftruncate"]);
