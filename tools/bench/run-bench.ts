// Spillway benchmarks against DuckDB doing the same work directly (issue #6).
//   npm run bench            (= tsx tools/bench/run-bench.ts)
//   BENCH_SCALE=0.01 BENCH_ONLY=1,3 npx tsx tools/bench/run-bench.ts
// See tools/bench/README.md for what is measured and every knob.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { cpus, freemem, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { leaveOldGenerationHeadroom } from "@spillway/rpc";
import { DuckBaseline } from "./baselines.js";
import { BenchContext } from "./context.js";
import { topSelfTime } from "./cpu-profile.js";
import { DataGenerator } from "./datagen.js";
import { bulkExport } from "./measures/bulk-export.js";
import { costGrowth } from "./measures/cost-growth.js";
import { ingestion } from "./measures/ingestion.js";
import { kustoLanguage } from "./measures/kusto-language.js";
import { manyExports } from "./measures/many-exports.js";
import { manyNodes } from "./measures/many-nodes.js";
import { history } from "./measures/history.js";
import { runLatency } from "./measures/run-latency.js";
import { startAzurite, type Azurite } from "./processes.js";
import { firstLine, formatNotes, formatTable, MiB, notMeasured, writeJson, type Figure } from "./report.js";
import { loadSettings, REPO_ROOT, scaled, type MeasureId } from "./settings.js";
import { TraceCollector } from "./trace-collector.js";

interface Group {
  ids: MeasureId[];
  /** Rows of each figure should the group fail, as (id, measure, target). */
  placeholders: Array<[MeasureId, string, string, string?]>;
  run(ctx: BenchContext): Promise<Figure[]>;
}

const GROUPS: Group[] = [
  {
    ids: [1, 2, 7],
    placeholders: [
      [1, "one run exporting 10M rows to Parquet in Azurite", "≤ 0.9×"],
      [2, "one run exporting 10M rows to CSV gzip in Azurite", "≤ 1.3×"],
      [7, "peak memory (RSS of Spillway) during #1", "≤ 1024 MiB"],
    ],
    run: bulkExport,
  },
  {
    ids: [5],
    placeholders: [
      [5, "ingestion of 5M rows as 100k-row CSV payloads through IngestStream", "≤ 1.5×"],
      [5, "ingestion of 5M rows as 100k-row CSV payloads through Ingest", "≤ 1.5×", "5b"],
    ],
    run: ingestion,
  },
  { ids: [3], placeholders: [[3, "run latency, ingest 1,000 rows then trigger", "p50 ≤ 20 ms, p99 ≤ 60 ms"]], run: runLatency },
  { ids: [4], placeholders: [[4, "cost growth: 1,000 new rows on 50M older rows vs empty", "≤ 1.2×"]], run: costGrowth },
    {
    ids: [6],
    placeholders: [
      [6, "200 exports over 20 tables, 10 s interval, trickle", "max lateness ≤ 12 s; none starved"],
      [6, "1,000 exports over 50 tables, 10 s interval, trickle", "reported", "6b"],
    ],
    run: manyExports,
  },
  {
    ids: [8],
    placeholders: [
      [8, "start-up to ready, and RSS with the KQL parser loaded", "reported"],
      [8, "small KQL query after warm-up", "p50 ≤ 30 ms"],
      [8, "export run in KQL vs its SQL twin", "≤ 1.05×"],
    ],
    run: kustoLanguage,
  },
  {
    ids: [9],
    placeholders: [
      [9, "run latency with the stores in PostgreSQL", "reported"],
      [9, "one run exporting 4M rows to Parquet on 1, 2 and 3 nodes", "reported"],
    ],
    run: manyNodes,
  },
  {
    ids: [10],
    placeholders: [
      [10, "backfill of 10M rows vs a one-shot export of the same rows", "≤ 1.2×"],
      [10, "query over the last tenth of a 50M-row table by cursor_after vs over only those rows", "reported", "10b"],
      [10, "the same query over the whole table", "reported", "10c"],
    ],
    run: history,
  },
];

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

async function main(): Promise<void> {
  // This process is the benchmark's client, sending payloads the way a Spillway process
  // receives them; it gets the same GC headroom so its collections do not take CPU from
  // the system under test (#5's client spent 65 ms of CPU per payload without it, 15 with).
  leaveOldGenerationHeadroom();
  const settings = loadSettings();
  const startedAt = new Date();
  const workDir = settings.workDir ?? mkdtempSync(join(tmpdir(), "spillway-bench-"));
  mkdirSync(workDir, { recursive: true });
  const cpuProfDir = settings.cpuProf ? mkdtempSync(join(tmpdir(), "spillway-bench-cpuprof-")) : undefined;

  const duckdbVersion = await new DuckBaseline(join(workDir, "version-probe")).version();
  rmSync(join(workDir, "version-probe"), { recursive: true, force: true });
  const machine = {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    kernel: release(),
    node: process.version,
    duckdb: duckdbVersion,
    commit: `${git(["rev-parse", "--short", "HEAD"])}${git(["status", "--porcelain", "--", "services", "libs"]) ? " (services/libs modified)" : ""}`,
  };
  console.log(
    `Spillway benchmark: ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB memory (${(machine.freeMemoryBytes / 1024 ** 3).toFixed(1)} GiB free), ` +
      `Linux ${machine.kernel}, Node ${machine.node}, DuckDB ${machine.duckdb}, commit ${machine.commit}`,
  );
  console.log(
    `scale ${settings.scale} (10M → ${scaled(settings, 10_000_000).toLocaleString("en-US")} rows), measures ${[...settings.only].sort().join(",")}, seed ${settings.seed}, ` +
      `${settings.ingestConcurrency} ingest calls in flight, tracing ${settings.trace ? "on" : "off"}, work dir ${workDir}`,
  );

  let azurite: Azurite | undefined;
  let collector: TraceCollector | undefined;
  let data: DataGenerator | undefined;
  let ctx: BenchContext | undefined;
  const cleanup = async () => {
    await ctx?.stopAll();
    await azurite?.stop();
    await collector?.stop();
    data?.close();
    data = undefined;
    if (!settings.keep && !settings.workDir) rmSync(workDir, { recursive: true, force: true });
  };
  const onSignal = (signal: string) => {
    process.stderr.write(`bench: ${signal}, stopping the processes it started\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));

  const figures: Figure[] = [];
  try {
    azurite = await startAzurite(join(workDir, "azurite"));
    collector = settings.trace ? await TraceCollector.start() : undefined;
    data = await DataGenerator.create(join(workDir, "data"), settings.seed, scaled(settings, 10_000_000));
    ctx = new BenchContext(settings, workDir, azurite, data, collector, cpuProfDir);

    for (const group of GROUPS) {
      if (!group.ids.some((id) => settings.only.has(id))) continue;
      const t0 = performance.now();
      ctx.log(`measures ${group.ids.filter((id) => settings.only.has(id)).join(",")}: start`);
      try {
        figures.push(...(await group.run(ctx)));
      } catch (err) {
        const message = firstLine(err);
        ctx.log(`measures ${group.ids.join(",")} failed: ${(err as Error).stack ?? message}`);
        await ctx.stopAll();
        for (const [id, measure, target, figureId] of group.placeholders) {
          if (settings.only.has(id)) figures.push(notMeasured(figureId ?? String(id), measure, target, `could not be measured: ${message}`));
        }
      }
      ctx.log(`measures ${group.ids.filter((id) => settings.only.has(id)).join(",")}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      if (collector) collector.spans.length = 0;
    }
  } finally {
    await cleanup();
  }

  // Ids are numbers, some with a letter (5b after 5).
  figures.sort((a, b) => parseInt(a.id, 10) - parseInt(b.id, 10) || a.id.localeCompare(b.id));
  console.log("");
  console.log(formatTable(figures));
  console.log("");
  console.log(formatNotes(figures));

  const profiles: Record<string, string[]> = {};
  if (cpuProfDir && existsSync(cpuProfDir)) {
    console.log(`\nCPU profiles of Spillway's main thread (node --cpu-prof) in ${cpuProfDir}:`);
    for (const instance of readdirSync(cpuProfDir)) {
      // Each thread writes CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main one.
      const main = readdirSync(join(cpuProfDir, instance)).find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
      if (!main) continue;
      profiles[instance] = topSelfTime(join(cpuProfDir, instance, main), 12);
      console.log(`${instance} (${main}):\n${profiles[instance]!.map((l) => `  ${l}`).join("\n")}`);
    }
  }

  writeJson(settings.out, {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { ...machine, memoryMiB: Math.round(machine.memoryBytes / MiB) },
    settings: { ...settings, only: [...settings.only].sort() },
    figures,
    cpuProfiles: cpuProfDir ? { dir: cpuProfDir, top: profiles } : undefined,
  });
  console.log(`\nresults written to ${settings.out}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
