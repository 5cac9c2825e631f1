/** What one call cost its process (ResourceUsage in catalog_types.proto). */
export interface MeasuredUsage {
  cpuTimeUs: bigint;
  peakProcessMemoryBytes: bigint;
  peakDuckdbMemoryBytes: bigint;
}

/** Bytes of memory DuckDB holds now. */
export type MemoryProbe = () => Promise<bigint>;

/**
 * How often a call's memory is sampled. DuckDB's memory is a query of its own (1 to 3 ms on
 * libuv's threads): sampled every 25 ms, with runs side by side, the readings took nearly as
 * much of those threads as the runs' export queries (bench #6). A run of seconds is still
 * sampled many times over.
 */
const SAMPLE_EVERY_MS = 250;

/**
 * Runs `work` and measures what the process spent meanwhile: CPU time of every thread
 * (DuckDB's are threads of this process), and the peaks of resident memory and of DuckDB's
 * memory. DuckDB's is sampled as the call starts and every SAMPLE_EVERY_MS, and the answer
 * waits for a sample under way (none outlives the call), but none is started at the end: a
 * probe is a query of its own, and one more per call cost a small run three of them (bench
 * #3). Node offers no per-call CPU figure, so calls running at the same time in one process
 * each count the CPU all of them used; DuckDB's memory is its instance's, whichever calls hold it.
 */
export async function measured<T>(work: () => Promise<T>, probe?: MemoryProbe): Promise<{ value: T; usage: MeasuredUsage }> {
  const cpuBefore = process.cpuUsage();
  let peakRss = process.memoryUsage.rss();
  let peakDuckdb = 0n;
  let probing: Promise<void> | undefined;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    if (!probe || probing) return;
    probing = probe()
      .then((bytes) => {
        if (bytes > peakDuckdb) peakDuckdb = bytes;
      })
      // A probe that fails leaves the peak as it was: the call's outcome does not depend on it.
      .catch(() => undefined)
      .finally(() => {
        probing = undefined;
      });
  };
  sample();
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  try {
    const value = await work();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    await probing;
    const cpu = process.cpuUsage(cpuBefore);
    return { value, usage: { cpuTimeUs: BigInt(cpu.user + cpu.system), peakProcessMemoryBytes: BigInt(peakRss), peakDuckdbMemoryBytes: peakDuckdb } };
  } finally {
    clearInterval(timer);
  }
}
