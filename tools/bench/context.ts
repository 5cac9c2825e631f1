import { join } from "node:path";
import type { DataGenerator } from "./datagen.js";
import { sleep, startSpillway, type Azurite, type Spillway } from "./processes.js";
import type { BenchSettings } from "./settings.js";
import type { Span, TraceCollector } from "./trace-collector.js";

/** What every measure gets: settings, the shared Azurite and data, and a way to start Spillway. */
export class BenchContext {
  private readonly started = new Set<Spillway>();

  constructor(
    readonly settings: BenchSettings,
    readonly workDir: string,
    readonly azurite: Azurite,
    readonly data: DataGenerator,
    readonly collector: TraceCollector | undefined,
    readonly cpuProfDir: string | undefined,
  ) {}

  log(message: string): void {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  }

  /**
   * A fresh Spillway process with its own data directory (and `env` for its settings), its
   * spans sent to the bench's collector when tracing is on, unless `traced` is false.
   */
  async spillway(name: string, env?: Record<string, string>, traced = true): Promise<Spillway> {
    const sw = await startSpillway({
      name,
      workDir: this.workDir,
      otlpUrl: traced ? this.collector?.url : undefined,
      cpuProfDir: this.cpuProfDir,
      env,
    });
    this.started.add(sw);
    this.log(`spillway '${name}' pid ${sw.pid} on ${sw.address}`);
    return sw;
  }

  async stopSpillway(sw: Spillway): Promise<void> {
    this.started.delete(sw);
    await sw.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.started].map((sw) => this.stopSpillway(sw)));
  }

  /** Spans that started in [fromMs, toMs] (epoch ms), after giving the exporter time to send them. */
  async spans(fromMs: number, toMs: number): Promise<Span[] | undefined> {
    if (!this.collector) return undefined;
    await sleep(1500);
    return this.collector.between(fromMs, toMs);
  }

  dir(name: string): string {
    return join(this.workDir, name);
  }
}
