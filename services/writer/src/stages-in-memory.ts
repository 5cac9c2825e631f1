/**
 * Stages this process made, kept for their upload, within a budget of entries: one for each
 * stage and one for each of its artifacts. It bounds what runs that never upload nor discard
 * (their scheduler died mid-run) leave behind, however many stages or artifacts they are. The
 * oldest go first; a stage larger than the whole budget is not kept (its upload reads the
 * manifest back, which a run of that many files does not notice).
 */
export class StagesInMemory<S extends { artifacts: unknown[] }> {
  /** Each stage with the entries it was counted as when kept. */
  private readonly stages = new Map<string, { stage: S; entries: number }>();
  private entries = 0;

  constructor(private readonly maxEntries: number) {}

  keep(stageId: string, stage: S): void {
    this.forget(stageId);
    const entries = 1 + stage.artifacts.length;
    if (entries > this.maxEntries) return;
    for (const oldest of this.stages.keys()) {
      if (this.entries + entries <= this.maxEntries) break;
      this.forget(oldest);
    }
    this.stages.set(stageId, { stage, entries });
    this.entries += entries;
  }

  get(stageId: string): S | undefined {
    return this.stages.get(stageId)?.stage;
  }

  forget(stageId: string): void {
    const kept = this.stages.get(stageId);
    if (!kept) return;
    this.stages.delete(stageId);
    this.entries -= kept.entries;
  }

  /** Entries of the stages kept. */
  get size(): number {
    return this.entries;
  }
}
