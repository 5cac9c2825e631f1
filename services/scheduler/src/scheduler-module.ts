import { randomUUID } from "node:crypto";
import type { SpillwayConfig } from "@spillway/config";
import { errorMessage } from "@spillway/errors";
import { withRetry } from "@spillway/rpc";
import { ExportRunner, type RunCluster } from "./export-runner.js";
import { ManifestWriter } from "./manifest-writer.js";
import { OperationRunner } from "./operation-runner.js";
import { observeExports, RunMetrics } from "./run-metrics.js";
import type { SchedulerPeers } from "./peer-clients.js";
import { cursorLedger } from "./run-ledger.js";
import { RunRequestListener } from "./run-request-listener.js";
import { RunScheduler } from "./run-scheduler.js";

export interface SchedulerModuleOptions {
  /** The clock of leases, intervals and failure ages; injectable so tests need not wait days. */
  now?: () => number;
  /** This process is a node of several sharing PostgreSQL: it says so, and splits row-wise runs over the live nodes. */
  node?: SchedulerNodeOptions;
}

export interface SchedulerNodeOptions {
  /** Where other nodes reach this one's services (known once it listens). */
  address: () => string;
  /** A client of another node's query or writer service. */
  dial: <S extends "query" | "writer">(service: S, address: string) => SchedulerPeers[S] & { close(): void };
}

/** How often a node says it is alive, and how long after the last time it counts as gone. */
const HEARTBEAT_MS = 2000;
const NODE_TIMEOUT_MS = 3 * HEARTBEAT_MS;
/**
 * A running scheduler sweeps a shared store, once a lease's time, for the runs a node that died
 * left Running with no one to take their export: those whose lease expired this many leases ago.
 * An expired lease stays its owner's until taken (README "A node paused mid-run"): a node whose
 * renewals are only late keeps that long to commit.
 */
const SWEEP_AFTER_LEASES = 3;

/**
 * Due exports and run orchestration (DESIGN "Scale-out"): depends on catalog, cursor,
 * query and writer, and none of them on it, so it serves no RPC of its own.
 */
export async function createSchedulerModule(config: SpillwayConfig, peers: SchedulerPeers, log: (line: string) => void, options: SchedulerModuleOptions = {}) {
  const ledger = cursorLedger(peers.cursor);
  const node = options.node && nodeOf(options.node, peers, config.distributedMinBytes);
  const runner = new ExportRunner(ledger, peers, { now: options.now, log, leaseTtlMs: config.runLeaseMs, cluster: node?.cluster, metrics: new RunMetrics(), sliceBytes: BigInt(config.runSliceBytes) });
  const scheduler = new RunScheduler(ledger, runner, peers, {
    tickMs: config.schedulerTickMs,
    maxConcurrentRuns: config.maxConcurrentRuns,
    now: options.now,
    log,
  });
  observeExports(peers, runner, scheduler, options.now);
  const listener = new RunRequestListener(runner, peers, log, (spec, outcome) => scheduler.ranAsked(spec, outcome));
  // One-shot exports (ExportToTable) the query service recorded: taken from the ledger by whichever scheduler asks first.
  const operations = new OperationRunner(peers, { leaseTtlMs: config.runLeaseMs, log });
  // Every committed run's manifest, beside its data; those a crash left due are written at start.
  const manifests = new ManifestWriter(peers, { log });
  let stopped = false;
  let starting: Promise<void> | undefined;
  let sweep: NodeJS.Timeout | undefined;
  return {
    async start() {
      // Leases and Running runs a scheduler that died left behind are released and failed
      // (their checkpoint never moved) before any run starts: recovery would take a new run's lease too.
      const recover = () => peers.cursor.recoverAbandonedRuns({});
      const begin = () => {
        node?.start();
        scheduler.start();
        listener.start();
        operations.start();
        manifests.start();
        sweep = setInterval(() => {
          void peers.cursor.recoverAbandonedRuns({ expiredForMs: BigInt(SWEEP_AFTER_LEASES * config.runLeaseMs) }).catch((err) => log(`scheduler: sweep for abandoned runs: ${errorMessage(err)}`));
        }, config.runLeaseMs);
        sweep.unref();
      };
      try {
        await recover();
        begin();
      } catch {
        // The cursor service is another process, not up yet: keep trying in the background.
        starting = withRetry(recover, { attempts: 1000, baseDelayMs: 100, maxDelayMs: 2000, shouldRetry: () => !stopped })
          .then(() => (stopped ? undefined : begin()))
          .catch((err) => log(`scheduler: could not start: ${errorMessage(err)}`));
      }
    },
    async stop() {
      stopped = true;
      await starting;
      clearInterval(sweep);
      scheduler.stop();
      await listener.stop();
      await operations.stop();
      await manifests.stop();
      await runner.drain();
      node?.stop();
    },
  };
}

/** This node in the cluster: its heartbeat, the live nodes, and clients of their services. */
function nodeOf(options: SchedulerNodeOptions, peers: SchedulerPeers, minSplitBytes: number) {
  const nodeId = randomUUID();
  const remotes = new Map<string, { query: SchedulerPeers["query"] & { close(): void }; writer: SchedulerPeers["writer"] & { close(): void } }>();
  let timer: NodeJS.Timeout | undefined;
  const beat = () => void peers.cursor.heartbeat({ nodeId, address: options.address() }).catch(() => undefined);
  const cluster: RunCluster = {
    nodeId,
    async liveNodes() {
      return (await peers.cursor.listNodes({ maxAgeMs: BigInt(NODE_TIMEOUT_MS) })).nodes.map((n) => ({ nodeId: n.nodeId, address: n.address }));
    },
    peersAt(address) {
      let remote = remotes.get(address);
      if (!remote) remotes.set(address, (remote = { query: options.dial("query", address), writer: options.dial("writer", address) }));
      return remote;
    },
    minSplitBytes: BigInt(minSplitBytes),
  };
  return {
    cluster,
    start() {
      beat();
      timer = setInterval(beat, HEARTBEAT_MS);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      for (const r of remotes.values()) (r.query.close(), r.writer.close());
    },
  };
}
