/**
 * Stages this process made, kept for their upload by artifact count: a bound on what runs
 * that never upload nor discard (their scheduler died mid-run) leave behind, whatever the
 * size of each. The oldest go first; a stage larger than the whole budget is not kept (its
 * upload reads the manifest back, which costs a bulk run nothing it would notice).
 */
export class StagesInMemory<S extends { artifacts: unknown[] }> {
  private readonly stages = new Map<string, S>();
  private artifacts = 0;

  constructor(private readonly maxArtifacts: number) {}

  keep(stageId: string, stage: S): void {
    this.forget(stageId);
    if (stage.artifacts.length > this.maxArtifacts) return;
    while (this.artifacts + stage.artifacts.length > this.maxArtifacts) this.forget(this.stages.keys().next().value!);
    this.stages.set(stageId, stage);
    this.artifacts += stage.artifacts.length;
  }

  get(stageId: string): S | undefined {
    return this.stages.get(stageId);
  }

  forget(stageId: string): void {
    const stage = this.stages.get(stageId);
    if (!stage) return;
    this.stages.delete(stageId);
    this.artifacts -= stage.artifacts.length;
  }

  /** Artifacts of the stages kept. */
  get size(): number {
    return this.artifacts;
  }
}
