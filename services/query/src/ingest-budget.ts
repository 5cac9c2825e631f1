import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";

/**
 * What one ingestion-by-reference call may still bring in, for all its sources together:
 * bytes as they arrive, a gzip file's unpacked (what it claims to hold is never trusted),
 * and files (each becomes a scratch file and a file DuckDB reads).
 */
export interface IngestBudget {
  maxBytes: number;
  bytesLeft: number;
  maxFiles: number;
  filesLeft: number;
}

export function ingestBudget(maxBytes: number, maxFiles: number): IngestBudget {
  return { maxBytes, bytesLeft: maxBytes, maxFiles, filesLeft: maxFiles };
}

/** Takes one file out of `budget`, or refuses the call. */
export function takeFile(budget: IngestBudget): void {
  if (--budget.filesLeft < 0) throw new SpillwayError(ErrorCode.resourceExhausted, `the call names or unpacks more than the ${budget.maxFiles} files one call may ingest; nothing was ingested`);
}

/** Whether a path or URI names a gzip file (by its ending, as Kusto reads it). */
export const isGzip = (name: string) => /\.gz(?:[;?]|$)/i.test(name);

/** A source that breaks off while read: storage's trouble, to try again. */
const sourceBrokeOff = (shown: string, err: unknown) => new SpillwayError(ErrorCode.unavailable, `'${shown}' could not be read to its end (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); try again`);

/**
 * Writes `source` to `localFile`, unpacked first when `gunzip`, counting every byte written
 * against `budget`. Fails with RESOURCE_EXHAUSTED past the budget, INVALID_ARGUMENT for gzip
 * data that cannot be read, UNAVAILABLE when this machine cannot write, and as `readError`
 * says when the source fails (by default UNAVAILABLE: it broke off); `shown` names the
 * source in messages.
 */
export async function keepWithin(source: NodeJS.ReadableStream, localFile: string, shown: string, budget: IngestBudget, gunzip: boolean, readError: (err: unknown) => SpillwayError = (err) => sourceBrokeOff(shown, err)): Promise<void> {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      budget.bytesLeft -= chunk.length;
      if (budget.bytesLeft < 0) done(new SpillwayError(ErrorCode.resourceExhausted, `the files of the call come to more than the ${budget.maxBytes} bytes one call may ingest (--max-ingest-size), gzip unpacked; nothing was ingested`));
      else done(null, chunk);
    },
  });
  const sink = createWriteStream(localFile);
  const unpack = gunzip ? createGunzip() : undefined;
  try {
    await (unpack ? pipeline(source, unpack, counter, sink) : pipeline(source, counter, sink));
  } catch (err) {
    // The first failure, whichever stream it came from (the pipeline passes it to the others).
    const { code, syscall } = err as NodeJS.ErrnoException;
    if (err instanceof SpillwayError) throw err;
    if (syscall && WRITING.has(syscall)) throw new SpillwayError(ErrorCode.unavailable, `could not keep '${shown}' here: ${code ?? (err as Error).message}; try again`);
    if (unpack && code?.startsWith("Z_")) throw invalidArgument(`'${shown}' is not gzip data that can be read: ${(err as Error).message}; nothing was ingested`);
    throw readError(err);
  }
}

/** The system calls of writing a local file: their failures are this machine's, not the source's. */
const WRITING = new Set(["open", "write", "writev", "close", "fsync", "ftruncate"]);
