import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM), or undefined if the process is gone. */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command (which may hold spaces and parentheses): state, ppid, ...
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // Gone meanwhile.
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i] && !tree.includes(child)) tree.push(child);
  }
  return tree;
}

/**
 * Resets the kernel's peak-RSS mark (VmHWM) of a process we own (`echo 5 > clear_refs`),
 * so VmHWM afterwards is the peak of what follows. False where not permitted.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export interface RssSampling {
  /** Stops sampling; peak and samples of the summed RSS of each process tree. */
  stop(): { peakBytes: number; samples: number; peakByRoot: Record<number, number> };
}

/** Samples the summed VmRSS of the process trees under `roots` every `everyMs`. */
export function sampleRss(roots: number[], everyMs = 100): RssSampling {
  let peak = 0;
  let samples = 0;
  const peakByRoot: Record<number, number> = {};
  const sample = () => {
    let total = 0;
    for (const root of roots) {
      let sum = 0;
      for (const pid of processTree(root)) sum += statusBytes(pid, "VmRSS") ?? 0;
      peakByRoot[root] = Math.max(peakByRoot[root] ?? 0, sum);
      total += sum;
    }
    peak = Math.max(peak, total);
    samples++;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peakBytes: peak, samples, peakByRoot };
    },
  };
}
