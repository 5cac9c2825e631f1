/** What one call cost its process (ResourceUsage in catalog_types.proto). */
export interface MeasuredUsage {
  cpuTimeUs: bigint;
  peakProcessMemoryBytes: bigint;
  peakDuckdbMemoryBytes: bigint;
}

/** Bytes of memory DuckDB holds now. */
export type MemoryProbe = () => Promise<bigint>;

const SAMPLE_EVERY_MS = 25;

/**
 * Runs `work` and measures what the process spent meanwhile: CPU time of every thread
 * (DuckDB's are threads of this process), and the peaks of resident memory and of DuckDB's
 * memory. DuckDB's is sampled as the call starts and every 25 ms, and the answer waits for
 * a sample under way (none outlives the call), but none is started at the end: a probe is a
 * query of its own (about 2 ms here), and one more per call cost a small run three of them
 * (bench #3). Node offers no per-call CPU figure, so calls running at the same time in one
 * process each count the CPU all of them used.
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
