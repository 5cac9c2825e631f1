// Where an Ingest call's CPU goes (issue #6, measure #5): ingests PROBE_ROWS rows (default
// 2M) as 100k-row CSV payloads, CONC calls in flight (default 2), by RPC (IngestStream, the
// default, or Ingest), into a fresh Spillway, and
// prints CPU milliseconds per payload of Spillway (in all, and per thread; MAIN is the event
// loop, the rest DuckDB's and libuv's threads) and of this client.
//   npx tsx tools/bench/ingest-cpu-probe.ts
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leaveOldGenerationHeadroom } from "@spillway/rpc";
import { DataGenerator } from "./datagen.js";
import { startSpillway } from "./processes.js";
import { createTable, ingestFiles, type IngestRpc } from "./spillway-ops.js";
leaveOldGenerationHeadroom(); // as the bench runner does
const ROWS = Number(process.env.PROBE_ROWS ?? 2_000_000);
const work = mkdtempSync(join(tmpdir(), "spillway-probe-"));
const gen = await DataGenerator.create(join(work, "data"), 20260101, ROWS);
const files = await gen.payloads(ROWS);
gen.close();
const sw = await startSpillway({ name: "probe", workDir: work });
await createTable(sw, "T");
/** CPU milliseconds from a /proc stat file (a process's or a thread's): user + system, and system alone. */
const cpuMs = (statFile: string) => {
  const f = readFileSync(statFile, "utf8").split(") ")[1]!.split(" ");
  return { total: (Number(f[11]) + Number(f[12])) * 10, sys: Number(f[12]) * 10 };
};
const ticks = (pid: number) => cpuMs(`/proc/${pid}/stat`).total;
const sysTicks = (pid: number) => cpuMs(`/proc/${pid}/stat`).sys;
const threads = (pid = sw.pid) =>
  Object.fromEntries(
    readdirSync(`/proc/${pid}/task`).map((t) => [`${t}:${readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim()}`, cpuMs(`/proc/${pid}/task/${t}/stat`).total]),
  );
const th0 = threads();
const ct0 = threads(process.pid);
const s0 = ticks(sw.pid); const c0 = process.cpuUsage(); const t0 = performance.now();
let mark = { at: performance.now(), server: s0, serverSys: sysTicks(sw.pid), client: c0.user + c0.system };
const windows: string[] = [];
const everyTen = (done: number) => {
  if (done % 10) return;
  const now = { at: performance.now(), server: ticks(sw.pid), serverSys: sysTicks(sw.pid), client: process.cpuUsage().user + process.cpuUsage().system };
  windows.push(`${done}: wall ${((now.at - mark.at) / 10).toFixed(0)} server ${((now.server - mark.server) / 10).toFixed(0)} (sys ${((now.serverSys - mark.serverSys) / 10).toFixed(0)}) client ${((now.client - mark.client) / 10000).toFixed(0)}`);
  mark = now;
};
await ingestFiles(sw, "T", files, Number(process.env.CONC ?? 2), everyTen, (process.env.RPC ?? "IngestStream") as IngestRpc);
const wall = performance.now() - t0; const s1 = ticks(sw.pid); const c1 = process.cpuUsage(c0);
console.log(`payloads ${files.length} wall ${wall.toFixed(0)} ms; server cpu ${s1 - s0} ms; client cpu ${((c1.user + c1.system) / 1000).toFixed(0)} ms; per payload: wall ${(wall / files.length).toFixed(0)}, server ${((s1 - s0) / files.length).toFixed(0)}, client ${((c1.user + c1.system) / 1000 / files.length).toFixed(0)}`);
const byThread = (pid: number, before: Record<string, number>, after: Record<string, number>) => {
  const byName: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) { const [tid, name] = k.split(":"); const label = tid === String(pid) ? "MAIN" : name!; byName[`${label}#${tid}`] = v - (before[k] ?? 0); }
  return Object.entries(byName).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([n, v]) => `${n}=${(v / files.length).toFixed(0)}ms`).join(" ");
};
console.log(`per payload by tens: ${windows.join("; ")}`);
console.log(`server threads: ${byThread(sw.pid, th0, threads())}`);
console.log(`client threads: ${byThread(process.pid, ct0, threads(process.pid))}`);
await sw.stop();
rmSync(work, { recursive: true, force: true });
