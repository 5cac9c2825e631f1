import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ResourceUsage, RunResourcesSchema } from "@spillway/proto";

export type RunResourcesInit = MessageInitShape<typeof RunResourcesSchema>;

/**
 * What one run cost, gathered as it goes (SPEC §8, the run history): the usage each service
 * call reports, summed for CPU and rows read and the largest for memory peaks, and the time
 * each phase took, in the order they began. A split run's parts run side by side, so a phase of it lasts as
 * long as its slowest part.
 */
export class RunAccount {
  private cpuTimeUs = 0n;
  private peakProcessMemoryBytes = 0n;
  private peakDuckdbMemoryBytes = 0n;
  private rowsRead = 0n;
  private bytesRead = 0n;
  private readonly phases: Array<{ name: string; durationMs: bigint }> = [];
  /** Over how many nodes the run was split (1: not split). */
  parts = 1;
  /** The cursor of the oldest record the run read (its lateness at commit is that record's age). */
  private oldestRecord?: bigint;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** Adds what one call reported it cost. */
  add(usage: ResourceUsage | undefined): void {
    if (!usage) return;
    this.cpuTimeUs += usage.cpuTimeUs;
    this.rowsRead += usage.rowsRead;
    this.bytesRead += usage.bytesRead;
    if (usage.peakProcessMemoryBytes > this.peakProcessMemoryBytes) this.peakProcessMemoryBytes = usage.peakProcessMemoryBytes;
    if (usage.peakDuckdbMemoryBytes > this.peakDuckdbMemoryBytes) this.peakDuckdbMemoryBytes = usage.peakDuckdbMemoryBytes;
  }

  /** Whether the run read any record of its fact tables. */
  get readFactRecords(): boolean {
    return this.oldestRecord !== undefined;
  }

  /** Notes the oldest fact cursor one query read ('' when it read none). */
  read(oldestFactCursor: string): void {
    if (!oldestFactCursor) return;
    const cursor = BigInt(oldestFactCursor);
    if (this.oldestRecord === undefined || cursor < this.oldestRecord) this.oldestRecord = cursor;
  }

  /**
   * Runs one phase of the run, timing it whether it succeeds or fails. Phases are listed in
   * the order they began: two may overlap (a run's query starts while the run is opened).
   */
  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const start = this.clock();
    const entry = { name, durationMs: 0n };
    this.phases.push(entry);
    try {
      return await work();
    } finally {
      entry.durationMs = BigInt(Math.round(this.clock() - start));
    }
  }

  /** The run's record of resources, with the records and bytes of the artifacts it wrote. */
  resources(artifacts: Array<{ numRecords: bigint; sizeBytes: bigint }>): RunResourcesInit {
    return {
      usage: {
        cpuTimeUs: this.cpuTimeUs,
        peakProcessMemoryBytes: this.peakProcessMemoryBytes,
        peakDuckdbMemoryBytes: this.peakDuckdbMemoryBytes,
        rowsRead: this.rowsRead,
        bytesRead: this.bytesRead,
      },
      rowsWritten: artifacts.reduce((n, a) => n + a.numRecords, 0n),
      bytesWritten: artifacts.reduce((n, a) => n + a.sizeBytes, 0n),
      phases: [...this.phases],
      parts: this.parts,
      oldestRecordCursor: this.oldestRecord === undefined ? "" : this.oldestRecord.toString(),
    };
  }
}
