import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DuckDBInstance } from "@duckdb/node-api";
import type { ExportedArtifact } from "@spillway/proto";
import { useAzurite, type Azurite } from "../support/azurite.js";
import { startChaosSpillway, type ChaosSpillway, type ChaosTarget } from "../support/chaos-processes.js";
import { seededRandom, startFaultProxy, type FaultProxy, type FaultProxyStats } from "../support/fault-proxy.js";
import { csv, manifests, newContainer } from "../support/fixtures.js";
import type { Mode } from "../support/spillway-processes.js";

/*
 * Exactly once under crashes and storage faults (issue #5).
 *
 * Per mode: Azurite behind a fault proxy, Spillway as real processes. For a bounded time,
 * concurrently: ingestion with unique ids (recording what was acknowledged and what is
 * uncertain), kill -9 of a random process and restart, RunContinuousExportNow calls,
 * scheduled runs every second, and storage faults on ~10% of requests. Then faults,
 * kills and ingestion stop, runs are triggered until every checkpoint covers all
 * ingestion, and the committed artifacts are checked against what was acknowledged.
 *
 * CHAOS_SECONDS (default 60, clamped to 5..90) per mode; the chaos phase goes on past it
 * only until 50 runs completed, and never past CHAOS_SECONDS + 30 s (at most 100 s).
 * CHAOS_SEED (default 20260305), CHAOS_FAULT_RATE (default 0.1), CHAOS_KEEP=1 keeps the data dirs.
 */

const CHAOS_SECONDS = Math.min(90, Math.max(5, Number(process.env.CHAOS_SECONDS ?? 60) || 60));
const CAP_SECONDS = Math.min(100, CHAOS_SECONDS + 30);
const SETTLE_SECONDS = 60;
const MIN_RUNS = 50;
const SEED = Number(process.env.CHAOS_SEED ?? 20260305) || 20260305;
const FAULT_RATE = Math.min(1, Math.max(0, Number(process.env.CHAOS_FAULT_RATE ?? 0.1)));
const KEEP = process.env.CHAOS_KEEP === "1";
const INGEST_DEADLINE_MS = 20_000;
const RUN_NOW_DEADLINE_MS = 60_000;
/** Per test: setup, chaos cap, settle, quiet wait (≤ 30 s), verification, stop; both modes well within 10 minutes. */
const TEST_TIMEOUT_MS = (CAP_SECONDS + SETTLE_SECONDS + 90) * 1000;

const EXPORTS = {
  plain: "PlainOut",
  labelled: "LabelledOut",
} as const;

type Status = "acked" | "uncertain";
interface FactRecord {
  table: "Events" | "Clicks";
  key: string;
  status: Status;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves or rejects within `ms`; a late answer is ignored (its effect counts as uncertain). */
function withDeadline<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  p.catch(() => undefined);
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

const short = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 160);

function tally(items: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[i] = (out[i] ?? 0) + 1;
  return out;
}

/** Blob name (inside the container) of an artifact path http://host/account/container/name. */
function blobNameOf(path: string, container: string): string | undefined {
  const segments = new URL(path).pathname.split("/");
  // ["", account, container, ...name]
  if (segments[2] !== container) return undefined;
  return decodeURIComponent(segments.slice(3).join("/"));
}

describe.each<Mode>(["split", "all", "nodes"])("exactly once under crashes and storage faults (%s)", (mode) => {
  it(
    `exports every acknowledged record exactly once through kill -9 and storage faults`,
    async () => {
      const seed = SEED + { split: 0, all: 1000, postgres: 2000, nodes: 3000 }[mode];
      const log = (line: string) => console.log(`[chaos ${mode}] ${line}`);
      let azurite: Azurite | undefined;
      let proxy: FaultProxy | undefined;
      let sw: ChaosSpillway | undefined;
      const logFile = join(tmpdir(), `spillway-chaos-${mode}-${Date.now()}.log`);
      try {
        azurite = await useAzurite();
        proxy = await startFaultProxy({ target: azurite.serviceUrl, rate: FAULT_RATE, seed, holdMs: 3000 });
        proxy.pause();
        sw = await startChaosSpillway(mode);
        const { catalog, query, cursor } = sw;
        const container = await newContainer(azurite, "chaos");

        // ---- definitions ------------------------------------------------------------
        await catalog.createTable({ name: "Events", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "Value", type: "real" }] });
        await catalog.createTable({ name: "Clicks", columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }] });
        await catalog.createTable({ name: "Keys", columns: [{ name: "Key", type: "string" }, { name: "Label", type: "string" }] });
        // Every key a fact row uses has its dimension row acknowledged first, so the inner
        // join never legitimately drops an acknowledged fact row.
        const labels = new Map<string, string>();
        const usableKeys: string[] = [];
        let keyCounter = 0;
        const uncertainKeys: string[] = [];
        const initialKeys = Array.from({ length: 3 }, () => `K${++keyCounter}`);
        await query.ingest({ table: "Keys", format: "csv", payload: csv(initialKeys.map((k) => [k, `Label-${k}`])) });
        for (const k of initialKeys) (labels.set(k, `Label-${k}`), usableKeys.push(k));

        await catalog.createExternalTable({
          name: "PlainLake",
          kind: "blob",
          dataFormat: "parquet",
          columns: [{ name: "Source", type: "string" }, { name: "Id", type: "long" }, { name: "Key", type: "string" }],
          connectionStrings: [proxy.connectionString(`${container}/plain`)],
        });
        await catalog.createExternalTable({
          name: "LabelledLake",
          kind: "blob",
          dataFormat: "parquet",
          columns: [{ name: "Id", type: "long" }, { name: "Key", type: "string" }, { name: "Label", type: "string" }],
          connectionStrings: [proxy.connectionString(`${container}/labelled`)],
        });
        const second = { seconds: 1n };
        const plain = await catalog.createOrAlterContinuousExport({
          name: EXPORTS.plain,
          externalTable: "PlainLake",
          query: "SELECT 'event' AS Source, Id, Key FROM Events UNION ALL SELECT 'click' AS Source, Id, Key FROM Clicks",
          properties: { intervalBetweenRuns: second },
        });
        expect([...plain.export!.cursorScopedTables].sort()).toEqual(["Clicks", "Events"]);
        const labelled = await catalog.createOrAlterContinuousExport({
          name: EXPORTS.labelled,
          externalTable: "LabelledLake",
          query: "SELECT e.Id, e.Key, k.Label FROM Events e JOIN Keys k ON e.Key = k.Key",
          over: ["Events"],
          properties: { intervalBetweenRuns: second },
        });
        expect(labelled.export!.cursorScopedTables).toEqual(["Events"]);
        const exportIds = new Map<string, string>([
          [EXPORTS.plain, plain.export!.id],
          [EXPORTS.labelled, labelled.export!.id],
        ]);

        // ---- shared chaos state -------------------------------------------------------
        const facts = new Map<number, FactRecord>();
        let idCounter = 0;
        let maxAckedCursor = 0n;
        const ingest = { batches: 0, ackedBatches: 0, uncertainBatches: 0, errors: [] as string[], anomalies: [] as string[] };
        const kills: Record<string, number> = {};
        const killErrors: string[] = [];
        const runNow = { completed: 0, failed: 0, errors: 0, failedDetails: [] as string[], errorMessages: [] as string[] };
        const runCounts = { completed: 0, begun: 0, failures: 0 };
        let stopIngest = false;
        let stopKill = false;
        let stopRunNow = false;
        let stopMonitor = false;
        let fatal: string | undefined;

        const ingestFacts = async (worker: number) => {
          const rnd = seededRandom(seed * 31 + worker);
          while (!stopIngest && !fatal) {
            const table = rnd() < 0.5 ? "Events" : "Clicks";
            const n = 1 + Math.floor(rnd() * 5);
            const rows = Array.from({ length: n }, () => {
              const id = ++idCounter;
              const key = usableKeys[Math.floor(rnd() * usableKeys.length)]!;
              return { id, key };
            });
            for (const r of rows) facts.set(r.id, { table, key: r.key, status: "uncertain" });
            const payload = csv(table === "Events" ? rows.map((r) => [r.id, r.key, r.id / 4]) : rows.map((r) => [r.id, r.key]));
            ingest.batches++;
            try {
              const res = await withDeadline("Ingest", query.ingest({ table, format: "csv", payload }), INGEST_DEADLINE_MS);
              if (res.rowCount !== BigInt(n) || !res.cursor) {
                ingest.anomalies.push(`${table} ids ${rows[0]!.id}..${rows[n - 1]!.id}: rowCount ${res.rowCount} cursor '${res.cursor}'`);
                ingest.uncertainBatches++;
              } else {
                for (const r of rows) facts.get(r.id)!.status = "acked";
                const c = BigInt(res.cursor);
                if (c > maxAckedCursor) maxAckedCursor = c;
                ingest.ackedBatches++;
              }
              await sleep(30 + rnd() * 120);
            } catch (err) {
              ingest.uncertainBatches++;
              ingest.errors.push(short(err));
              await sleep(150 + rnd() * 300);
            }
          }
        };

        const ingestKeys = async () => {
          const rnd = seededRandom(seed * 37);
          while (!stopIngest && !fatal) {
            await sleep(800 + rnd() * 1200);
            const key = `K${++keyCounter}`;
            try {
              const res = await withDeadline("Ingest Keys", query.ingest({ table: "Keys", format: "csv", payload: csv([[key, `Label-${key}`]]) }), INGEST_DEADLINE_MS);
              if (res.rowCount !== 1n) throw new Error(`rowCount ${res.rowCount}`);
              labels.set(key, `Label-${key}`);
              usableKeys.push(key);
            } catch (err) {
              // May or may not be there: never used by a fact row.
              uncertainKeys.push(key);
              ingest.errors.push(`Keys: ${short(err)}`);
            }
          }
        };

        let targetedKills = 0;
        const killer = async () => {
          const rnd = seededRandom(seed * 41);
          while (!stopKill && !fatal) {
            await sleep(2500 + rnd() * 4500);
            if (stopKill) break;
            const target: ChaosTarget = sw!.targets[Math.floor(rnd() * sw!.targets.length)]!;
            // Half the kills land while a storage request is in flight (or just after): the
            // window between an upload reaching storage and its commit, where orphans and
            // duplicates come from. The other half land wherever they fall.
            if (rnd() < 0.5) {
              const delay = rnd() * 40;
              if (await proxy!.waitForActivity(8000)) {
                targetedKills++;
                await sleep(delay);
              }
            }
            if (stopKill) break;
            await sw!.kill(target);
            kills[target] = (kills[target] ?? 0) + 1;
            await sleep(200 + rnd() * 1300);
            try {
              await sw!.start(target);
            } catch (err) {
              killErrors.push(`${target}: ${short(err)}`);
              try {
                await sw!.start(target);
              } catch (again) {
                fatal = `restart of ${target} after kill -9 failed twice: ${(again as Error).message}`;
              }
            }
          }
        };

        const inFlightRunNow = new Set<Promise<void>>();
        const runNowLoop = async () => {
          const rnd = seededRandom(seed * 43);
          while (!stopRunNow && !fatal) {
            await sleep(400 + rnd() * 2000);
            if (inFlightRunNow.size >= 2) continue;
            const name = rnd() < 0.5 ? EXPORTS.plain : EXPORTS.labelled;
            const p = withDeadline("RunContinuousExportNow", catalog.runContinuousExportNow({ name }), RUN_NOW_DEADLINE_MS)
              .then((r) => {
                if (r.result === "Completed") runNow.completed++;
                else (runNow.failed++, runNow.failedDetails.push(short(r.details)));
              })
              .catch((err) => {
                runNow.errors++;
                runNow.errorMessages.push(short(err));
              })
              .finally(() => inFlightRunNow.delete(p));
            inFlightRunNow.add(p);
          }
          await Promise.all([...inFlightRunNow]);
        };

        /** Completed runs from the export state: begun runs - recorded failures - the one running. */
        const countRuns = async () => {
          const { states } = await withDeadline("GetExportStates", cursor.getExportStates({ exportIds: [...exportIds.values()] }), 5000);
          let begun = 0;
          let failures = 0;
          let running = 0;
          for (const [name] of exportIds) {
            const f = await withDeadline("ShowFailures", catalog.showFailures({ name }), 5000);
            failures += f.failures.length;
          }
          for (const s of states) {
            begun += Number(s.runCount);
            if (s.isRunning) running++;
          }
          runCounts.begun = begun;
          runCounts.failures = failures;
          runCounts.completed = Math.max(runCounts.completed, begun - failures - running);
        };
        const monitor = async () => {
          while (!stopMonitor) {
            await countRuns().catch(() => undefined);
            await sleep(500);
          }
        };

        // Cursor order is visibility order (SPEC §2), across nodes too: a reader of the commit
        // log must never see an extent appear with a cursor below one it already saw.
        const order = { listings: 0, violations: [] as string[] };
        const orderReader = async () => {
          const seen = new Set<string>();
          let highest = -1n;
          while (!stopMonitor) {
            await sleep(300);
            const listed = await cursor.listExtents({ database: "default", tables: ["Events", "Clicks"], afterCursor: "" }).catch(() => undefined);
            if (!listed) continue;
            order.listings++;
            const fresh = listed.extents.filter((e) => !seen.has(e.cursor)).map((e) => BigInt(e.cursor));
            for (const c of fresh) if (c <= highest) order.violations.push(`cursor ${c} appeared after ${highest} was seen`);
            for (const e of listed.extents) seen.add(e.cursor);
            for (const c of fresh) if (c > highest) highest = c;
          }
        };

        // The nodes topology grows by one node halfway through the chaos: it joins and takes its share.
        let joined: string | undefined;
        const joiner = async () => {
          if (mode !== "nodes") return;
          await sleep((CHAOS_SECONDS * 1000) / 2);
          if (fatal || stopKill) return;
          try {
            joined = await sw!.addNode();
            log(`${joined} joined`);
          } catch (err) {
            fatal = `a node could not join: ${(err as Error).message}`;
          }
        };

        // ---- chaos ----------------------------------------------------------------------
        log(`seed ${seed}, fault rate ${FAULT_RATE}, chaos ${CHAOS_SECONDS}s (cap ${CAP_SECONDS}s), data ${sw.dataDir}, log ${logFile}`);
        const t0 = Date.now();
        proxy.resume();
        const monitorLoop = monitor();
        const orderLoop = orderReader();
        const joinLoop = joiner();
        const ingestLoops = [ingestFacts(1), ingestFacts(2), ingestKeys()];
        const killLoop = killer();
        const runLoop = runNowLoop();
        let capHit = false;
        for (;;) {
          await sleep(500);
          const elapsed = (Date.now() - t0) / 1000;
          if (fatal) break;
          if (elapsed >= CHAOS_SECONDS && runCounts.completed >= MIN_RUNS) break;
          if (elapsed >= CAP_SECONDS) {
            capHit = runCounts.completed < MIN_RUNS;
            break;
          }
        }
        const chaosSeconds = (Date.now() - t0) / 1000;
        // As the chaos ended: runs that complete while its loops stop are the settle's.
        const runsDuringChaos = runCounts.completed;

        // ---- settle: no kills, no faults, no ingestion; runs until checkpoints cover everything
        stopKill = true;
        await killLoop;
        await joinLoop;
        proxy.pause();
        const faultStats: FaultProxyStats = proxy.stats();
        stopIngest = true;
        await Promise.all(ingestLoops);
        stopRunNow = true;
        await runLoop;
        if (!fatal) {
          try {
            await sw.startAll();
          } catch (err) {
            fatal = `could not bring every process up after the chaos: ${(err as Error).message}`;
          }
        }
        log(`chaos phase over after ${chaosSeconds.toFixed(1)}s; ${runsDuringChaos} runs completed; settling`);
        if (fatal) {
          // Nothing can be verified without Spillway: fail with what is known.
          stopMonitor = true;
          await monitorLoop;
          throw new Error(
            `[chaos ${mode}] ${fatal}\nkills ${JSON.stringify(kills)}, restart errors ${JSON.stringify(killErrors)}, ` +
              `unexpected exits ${JSON.stringify(sw.unexpectedExits())}\nlast output:\n${sw.output(6000)}`,
          );
        }

        let target = maxAckedCursor;
        const caughtUp = new Map<string, { checkpoint: bigint; exportedTo?: string }>();
        const settleDeadline = Date.now() + SETTLE_SECONDS * 1000;
        {
          const current = BigInt((await withDeadline("GetCurrentCursor", cursor.getCurrentCursor({}), 10_000)).cursor || "0");
          if (current > target) target = current;
          while (Date.now() < settleDeadline && caughtUp.size < exportIds.size) {
            for (const name of exportIds.keys()) {
              if (caughtUp.has(name)) continue;
              const shown = await withDeadline("ShowContinuousExport", catalog.showContinuousExport({ name }), 10_000)
                .then((r) => r.export!)
                .catch((err) => (runNow.errorMessages.push(`settle show: ${short(err)}`), undefined));
              if (!shown) continue;
              const checkpoint = BigInt(shown.checkpointCursor || "0");
              if (checkpoint >= target) {
                caughtUp.set(name, { checkpoint, exportedTo: shown.exportedTo ? new Date(Number(shown.exportedTo.seconds) * 1000).toISOString() : undefined });
                continue;
              }
              await withDeadline("RunContinuousExportNow", catalog.runContinuousExportNow({ name }), RUN_NOW_DEADLINE_MS)
                .then((r) => (r.result === "Completed" ? runNow.completed++ : (runNow.failed++, runNow.failedDetails.push(`settle: ${short(r.details)}`))))
                .catch((err) => (runNow.errors++, runNow.errorMessages.push(`settle: ${short(err)}`)));
            }
            if (caughtUp.size < exportIds.size) await sleep(300);
          }
        }
        // Let uploads still in flight (a writer retrying for a caller that died) end before
        // storage is listed: wait for the export runs to be idle and storage to be quiet.
        let lastRequestAt = Date.now();
        const quietSince = () => Date.now() - lastRequestAt;
        let lastCount = proxy.stats().requests;
        const quietDeadline = Date.now() + 30_000;
        while (Date.now() < quietDeadline) {
          await sleep(500);
          const n = proxy.stats().requests;
          if (n !== lastCount) (lastCount = n, (lastRequestAt = Date.now()));
          const idle = await cursor
            .getExportStates({ exportIds: [...exportIds.values()] })
            .then((r) => r.states.every((s) => !s.isRunning))
            .catch(() => false);
          if (idle && quietSince() >= 13_000) break;
        }
        stopMonitor = true;
        await monitorLoop;
        await orderLoop;
        await countRuns().catch(() => undefined);

        // ---- verification ---------------------------------------------------------------
        const artifacts = new Map<string, ExportedArtifact[]>();
        for (const name of exportIds.keys()) artifacts.set(name, (await catalog.showExportedArtifacts({ name })).artifacts);
        const failures = new Map<string, Array<{ operationId: string; kind: string; details: string }>>();
        for (const name of exportIds.keys()) {
          failures.set(
            name,
            (await catalog.showFailures({ name })).failures.map((f) => ({ operationId: f.operationId, kind: f.failureKind, details: f.details })),
          );
        }
        // Storage listed directly in Azurite, not through the proxy; Spillway's manifests apart from the data.
        const stored = new Map<string, { size: number; modified?: Date }>();
        for await (const b of azurite.client.getContainerClient(container).listBlobsFlat()) {
          if (!/(^|\/)_spillway\//.test(b.name)) stored.set(b.name, { size: b.properties.contentLength ?? -1, modified: b.properties.lastModified });
        }
        // Every committed run's manifest lists its files; they are written just after the commits, so wait for them.
        const committedPaths = new Set([...artifacts.values()].flat().map((a) => a.path));
        let listed: Map<string, { files: Array<{ path: string; numRecords: number; md5: string | null }> }> = new Map();
        const manifestDeadline = Date.now() + 30_000;
        do {
          listed = await manifests(azurite, container);
          if ([...committedPaths].every((p) => [...listed.values()].some((m) => m.files.some((f) => f.path === p)))) break;
          await new Promise((r) => setTimeout(r, 500));
        } while (Date.now() < manifestDeadline);
        const manifestFiles = [...listed.values()].flatMap((m) => m.files);
        const manifestCounts = tally(manifestFiles.map((f) => f.path));
        const manifestProblems = [
          ...[...committedPaths].filter((p) => !manifestCounts[p]).map((p) => `committed, in no manifest: ${p}`),
          ...Object.entries(manifestCounts).filter(([p, n]) => n > 1 || !committedPaths.has(p)).map(([p, n]) => `in ${n} manifest(s), ${committedPaths.has(p) ? "committed" : "NOT committed"}: ${p}`),
          ...manifestFiles.filter((f) => !f.md5).map((f) => `no md5: ${f.path}`),
        ];
        const committedNames = new Map<string, { exportName: string; artifact: ExportedArtifact }>();
        const foreignPaths: string[] = [];
        for (const [name, list] of artifacts) {
          for (const a of list) {
            const blob = blobNameOf(a.path, container);
            if (blob === undefined) foreignPaths.push(a.path);
            else committedNames.set(blob, { exportName: name, artifact: a });
          }
        }
        const orphans = [...stored.keys()].filter((n) => !committedNames.has(n)).sort();

        // Download and read every committed artifact on its own.
        const unreadable: string[] = [];
        const countMismatch: string[] = [];
        const rows = new Map<string, Array<Record<string, unknown>>>([...exportIds.keys()].map((n) => [n, []]));
        const dir = mkdtempSync(join(tmpdir(), "chaos-artifacts-"));
        const duck = await DuckDBInstance.create(":memory:");
        const connection = await duck.connect();
        try {
          let i = 0;
          for (const [blob, { exportName, artifact }] of committedNames) {
            const file = join(dir, `${i++}.parquet`);
            try {
              const body = await azurite.client.getContainerClient(container).getBlobClient(blob).downloadToBuffer();
              writeFileSync(file, body);
              // The manifest's MD5 is the content's.
              const md5 = createHash("md5").update(body).digest("base64");
              const listedMd5 = manifestFiles.find((f) => f.path === artifact.path)?.md5;
              if (listedMd5 && listedMd5 !== md5) manifestProblems.push(`md5 ${listedMd5} in its manifest, ${md5} in storage: ${artifact.path}`);
            } catch (err) {
              unreadable.push(`${exportName} ${blob}: download failed: ${short(err)}`);
              continue;
            }
            try {
              const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet('${file}')`);
              const got = reader.getRowObjectsJson() as Array<Record<string, unknown>>;
              if (BigInt(got.length) !== artifact.numRecords) countMismatch.push(`${exportName} ${blob}: listed ${artifact.numRecords} records, holds ${got.length}`);
              rows.get(exportName)!.push(...got.map((r) => ({ ...r, __blob: blob })));
            } catch (err) {
              unreadable.push(`${exportName} ${blob}: not readable as parquet: ${short(err)}`);
            }
          }
        } finally {
          connection.closeSync();
          duck.closeSync();
          rmSync(dir, { recursive: true, force: true });
        }

        // Expected ids per export.
        const acked = [...facts].filter(([, f]) => f.status === "acked");
        const uncertain = [...facts].filter(([, f]) => f.status === "uncertain");
        const check = (exportName: string, relevant: (f: FactRecord) => boolean, rowOk: (id: number, f: FactRecord, row: Record<string, unknown>) => boolean) => {
          const seen = new Map<number, string[]>();
          const unexpected: string[] = [];
          const wrong: string[] = [];
          for (const r of rows.get(exportName)!) {
            const id = Number(r.Id);
            const f = facts.get(id);
            if (!f || !relevant(f)) {
              unexpected.push(`${id} in ${String(r.__blob)}`);
              continue;
            }
            if (!rowOk(id, f, r)) wrong.push(`${id}: ${JSON.stringify({ ...r, __blob: undefined })} (expected table ${f.table}, key ${f.key}, label ${labels.get(f.key)})`);
            seen.set(id, [...(seen.get(id) ?? []), String(r.__blob)]);
          }
          const lost = [...facts].filter(([id, f]) => f.status === "acked" && relevant(f) && !seen.has(id)).map(([id, f]) => ({ id, table: f.table }));
          const duplicated = [...seen].filter(([, blobs]) => blobs.length > 1).map(([id, blobs]) => ({ id, status: facts.get(id)!.status, blobs }));
          const uncertainPresent = [...seen.keys()].filter((id) => facts.get(id)!.status === "uncertain").length;
          const expectedAcked = [...facts.values()].filter((f) => f.status === "acked" && relevant(f)).length;
          return { lost, duplicated, unexpected, wrong, uncertainPresent, expectedAcked, rows: rows.get(exportName)!.length };
        };
        const plainCheck = check(EXPORTS.plain, () => true, (_id, f, r) => r.Source === (f.table === "Events" ? "event" : "click") && r.Key === f.key);
        const labelledCheck = check(EXPORTS.labelled, (f) => f.table === "Events", (_id, f, r) => r.Key === f.key && r.Label === labels.get(f.key));

        // ---- report ---------------------------------------------------------------------
        const totalArtifacts = [...artifacts.values()].reduce((n, l) => n + l.length, 0);
        const faultsAll = proxy.stats();
        const totalKills = Object.values(kills).reduce((a, b) => a + b, 0);
        const runsLine = capHit
          ? `runs=${runCounts.completed} completed (TIME CAP ${CAP_SECONDS}s HIT with only ${runsDuringChaos} < ${MIN_RUNS} during chaos; the rest while settling)`
          : `runs=${runCounts.completed} completed (${runsDuringChaos} during chaos)`;
        const summary =
          `[chaos ${mode}] ${chaosSeconds.toFixed(0)}s chaos, ${runsLine}, begun ${runCounts.begun}, failures recorded ${runCounts.failures}; ` +
          `RunNow: ${runNow.completed} Completed, ${runNow.failed} Failed, ${runNow.errors} errors; ` +
          `kills=${totalKills} ${JSON.stringify(kills)} (${targetedKills} during storage requests); ` +
          `faults=${faultStats.totalFaults} of ${faultStats.requests} requests ${JSON.stringify(faultStats.faults)} ${JSON.stringify(faultStats.phases)} (after pause: ${faultsAll.requests - faultStats.requests} requests, ${faultsAll.totalFaults - faultStats.totalFaults} faults); ` +
          `ingested: ${acked.length} acknowledged / ${uncertain.length} uncertain fact rows in ${ingest.batches} batches, ${usableKeys.length} keys (${uncertainKeys.length} uncertain); ` +
          `artifacts=${totalArtifacts} committed holding ${plainCheck.rows} (${EXPORTS.plain}) + ${labelledCheck.rows} (${EXPORTS.labelled}) records; ` +
          `${EXPORTS.plain}: lost=${plainCheck.lost.length} duplicated=${plainCheck.duplicated.length} unexpected=${plainCheck.unexpected.length} wrong=${plainCheck.wrong.length} uncertain-present=${plainCheck.uncertainPresent}; ` +
          `${EXPORTS.labelled}: lost=${labelledCheck.lost.length} duplicated=${labelledCheck.duplicated.length} unexpected=${labelledCheck.unexpected.length} wrong=${labelledCheck.wrong.length} uncertain-present=${labelledCheck.uncertainPresent}; ` +
          `orphan files=${orphans.length} of ${stored.size} stored; manifests=${listed.size} (${manifestProblems.length} problems); unreadable artifacts=${unreadable.length}; count mismatches=${countMismatch.length}; ` +
          `caught up=${caughtUp.size}/${exportIds.size}; unexpected exits=${sw.unexpectedExits().length}; ` +
          `cursor order: ${order.violations.length} violations in ${order.listings} listings${joined ? `; ${joined} joined` : ""}`;
        console.log(summary);

        const evidence: string[] = [];
        const list = <T>(label: string, items: T[], max = 30) => {
          if (items.length) evidence.push(`${label} (${items.length}):\n  ${items.slice(0, max).map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n  ")}${items.length > max ? "\n  ..." : ""}`);
        };
        const runIdPrefixOf = (blob: string) => /_(\d+)_([0-9a-f]{8})[^/]*$/.exec(blob);
        list(
          "orphan files (in storage, not committed artifacts)",
          orphans.map((o) => {
            const m = runIdPrefixOf(o);
            const fail = m ? [...failures.values()].flat().find((f) => f.operationId.startsWith(m[2]!)) : undefined;
            const s = stored.get(o)!;
            return `${o} (${s.size} bytes, ${s.modified?.toISOString()}) run #${m?.[1] ?? "?"} ${fail ? `-> failure ${fail.kind}: ${fail.details}` : "-> no failure recorded for this run id"}`;
          }),
        );
        list("manifests that do not match the committed artifacts", manifestProblems);
        list("committed artifacts that do not read back", unreadable);
        list("record count mismatches", countMismatch);
        list("artifact paths outside the container", foreignPaths);
        for (const [name, c] of [[EXPORTS.plain, plainCheck], [EXPORTS.labelled, labelledCheck]] as const) {
          list(`${name}: lost acknowledged ids`, c.lost);
          list(`${name}: duplicated ids`, c.duplicated);
          list(`${name}: ids never ingested into its tables`, c.unexpected);
          list(`${name}: rows with wrong values`, c.wrong);
        }
        list("not caught up", [...exportIds.keys()].filter((n) => !caughtUp.has(n)).map((n) => `${n} (target cursor ${target})`));
        list("unexpected process exits", sw.unexpectedExits());
        list("restart errors", killErrors);
        list("ingest anomalies", ingest.anomalies);
        if (fatal) evidence.push(`fatal: ${fatal}`);
        const failureKinds = tally([...failures.values()].flat().map((f) => `${f.kind}: ${f.details.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<id>").replace(/\d+/g, "N").slice(0, 140)}`));
        evidence.push(`run failures recorded by Spillway, by kind:\n  ${Object.entries(failureKinds).map(([k, n]) => `${n} × ${k}`).join("\n  ")}`);
        evidence.push(`RunNow errors: ${JSON.stringify(tally(runNow.errorMessages.map((m) => m.replace(/\d+/g, "N").slice(0, 100))))}`);
        evidence.push(`ingest errors: ${JSON.stringify(tally(ingest.errors.map((m) => m.replace(/\d+/g, "N").slice(0, 100))))}`);
        evidence.push(`caught up: ${JSON.stringify([...caughtUp].map(([n, c]) => ({ name: n, checkpoint: String(c.checkpoint), exportedTo: c.exportedTo })))}, target cursor ${target}, max acknowledged cursor ${maxAckedCursor}`);
        console.log(`[chaos ${mode}] evidence:\n${evidence.join("\n")}`);

        // ---- assertions (soft: every one is reported) -------------------------------------
        expect.soft(fatal, "every process came back after every kill -9").toBeUndefined();
        expect.soft(sw.unexpectedExits(), "no process exited on its own").toEqual([]);
        if (!capHit) expect.soft(runsDuringChaos, `at least ${MIN_RUNS} runs completed during the chaos`).toBeGreaterThanOrEqual(MIN_RUNS);
        else console.log(`[chaos ${mode}] NOTE: the ${CAP_SECONDS}s cap was hit with ${runsDuringChaos} runs completed during the chaos (< ${MIN_RUNS}); ${runCounts.completed} including the settle phase`);
        expect.soft(totalKills, "processes were killed").toBeGreaterThan(0);
        expect.soft(faultStats.totalFaults, "storage faults were injected").toBeGreaterThan(0);
        expect.soft(acked.length, "records were acknowledged").toBeGreaterThan(0);
        expect.soft([...caughtUp.keys()].sort(), "every checkpoint covers all ingestion").toEqual([...exportIds.keys()].sort());
        expect.soft(order.violations, "a reader never saw a cursor appear below one it had seen").toEqual([]);
        expect.soft(order.listings, "the commit log was read during the chaos").toBeGreaterThan(0);
        if (mode === "nodes") expect.soft(joined, "a node joined during the chaos").toBeDefined();
        expect.soft(plainCheck.lost, `${EXPORTS.plain}: lost = 0`).toEqual([]);
        expect.soft(labelledCheck.lost, `${EXPORTS.labelled}: lost = 0`).toEqual([]);
        expect.soft(plainCheck.duplicated, `${EXPORTS.plain}: duplicated = 0`).toEqual([]);
        expect.soft(labelledCheck.duplicated, `${EXPORTS.labelled}: duplicated = 0`).toEqual([]);
        expect.soft([...plainCheck.unexpected, ...labelledCheck.unexpected], "no ids that were never ingested").toEqual([]);
        expect.soft([...plainCheck.wrong, ...labelledCheck.wrong], "rows carry the ingested values and labels").toEqual([]);
        expect.soft(orphans, "files in storage that are not committed artifacts = 0").toEqual([]);
        expect.soft(manifestProblems, "the manifests list exactly the committed artifacts, each once, with its md5").toEqual([]);
        expect.soft(unreadable, "committed artifacts that don't read back = 0").toEqual([]);
        expect.soft(countMismatch, "committed record counts match the files").toEqual([]);
        expect.soft(foreignPaths, "artifacts are in the external table's container").toEqual([]);
      } finally {
        if (sw) writeFileSync(logFile, sw.output(Number.MAX_SAFE_INTEGER));
        await sw?.stop({ keepDataDir: KEEP });
        await proxy?.stop();
        await azurite?.stop();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
