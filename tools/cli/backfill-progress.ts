import { SingleBar } from "cli-progress";

/**
 * What `backfill` shows while it follows the export's backfill: on a terminal a bar of the
 * records committed of those it found (batches, rows/s, ETA); elsewhere a line per batch.
 */
export function backfillProgress(stream: NodeJS.WriteStream = process.stderr) {
  const started = Date.now();
  const rate = (records: bigint) => Math.round(Number(records) / Math.max(0.001, (Date.now() - started) / 1000));
  let bar: SingleBar | undefined;
  let lastBatches = -1n;
  return {
    at(p: { recordsDone: bigint; recordsTotal: bigint; batchesDone: bigint; batchesTotal: bigint }) {
      if (stream.isTTY) {
        if (!bar && p.batchesTotal > 0n) {
          bar = new SingleBar({ stream, format: " {bar} {percentage}% | {value}/{total} records | batch {batches} | {rowsPerSecond} rows/s | ETA {eta_formatted}", hideCursor: true });
          bar.start(Number(p.recordsTotal), 0, { batches: `0/${p.batchesTotal}`, rowsPerSecond: 0 });
        }
        bar?.update(Number(p.recordsDone), { batches: `${p.batchesDone}/${p.batchesTotal}`, rowsPerSecond: rate(p.recordsDone) });
      } else if (p.batchesDone !== lastBatches && p.batchesTotal > 0n) {
        lastBatches = p.batchesDone;
        stream.write(`backfill: batch ${p.batchesDone} of ${p.batchesTotal}, ${p.recordsDone} of ${p.recordsTotal} records\n`);
      }
    },
    done(state: string) {
      bar?.stop();
      if (!stream.isTTY) stream.write(`backfill: ${state}\n`);
    },
  };
}
