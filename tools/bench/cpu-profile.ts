// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time per function, top first.
//   npx tsx tools/bench/cpu-profile.ts <file.cpuprofile> [top]
// It covers the JavaScript main thread only; DuckDB works on its own native threads,
// so time spent waiting for DuckDB shows as (idle) here.
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { REPO_ROOT } from "./settings.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export function topSelfTime(path: string, top = 15): string[] {
  const profile = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const f = frames.get(profile.samples[i]!)!;
    const where = f.url ? ` ${f.url.startsWith("file://") ? relative(REPO_ROOT, f.url.slice(7)) : f.url}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = (profile.endTime - profile.startTime) || 1;
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: tsx tools/bench/cpu-profile.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  console.log(topSelfTime(file, Number(process.argv[3] ?? 25)).join("\n"));
}
