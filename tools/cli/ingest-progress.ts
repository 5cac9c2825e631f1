import { SingleBar } from "cli-progress";

/**
 * What `ingest` shows while it streams: on a terminal a progress bar (bytes, rows/s, ETA),
 * elsewhere plain lines, a few seconds apart and one per file, that a log keeps readable.
 */
export interface IngestProgress {
  sent(bytes: number): void;
  fileDone(file: string, rows: bigint): void;
  stop(): void;
}

export function ingestProgress(totalBytes: number, stream: NodeJS.WriteStream = process.stderr): IngestProgress {
  const started = Date.now();
  let bytes = 0;
  let rows = 0n;
  const rate = () => Math.round(Number(rows) / Math.max(0.001, (Date.now() - started) / 1000));
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: " {bar} {percentage}% | {value}/{total} bytes | {rowsPerSecond} rows/s | ETA {eta_formatted}",
      hideCursor: true,
    });
    bar.start(totalBytes, 0, { rowsPerSecond: 0 });
    return {
      sent: (n) => bar.update((bytes += n), { rowsPerSecond: rate() }),
      fileDone: (_file, r) => {
        rows += r;
        bar.update(bytes, { rowsPerSecond: rate() });
      },
      stop: () => bar.stop(),
    };
  }
  let lastLine = 0;
  const line = (text: string) => stream.write(`${text}\n`);
  return {
    sent(n) {
      bytes += n;
      if (Date.now() - lastLine >= 2000) {
        lastLine = Date.now();
        line(`ingest: ${bytes} of ${totalBytes} bytes sent`);
      }
    },
    fileDone(file, r) {
      rows += r;
      line(`ingest: ${file}: ${r} rows (${bytes} of ${totalBytes} bytes, ${rate()} rows/s)`);
    },
    stop: () => undefined,
  };
}
