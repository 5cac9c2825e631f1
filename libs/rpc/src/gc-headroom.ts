import { setFlagsFromString } from "node:v8";

/**
 * Lets V8's old generation grow to three times what survived the last full collection
 * before it starts the next one (its own factor is about 1.5 for heaps of a few tens of
 * MB). Processes that move payloads through large short-lived buffers, as ingestion does
 * on both ends of a call, otherwise run full collections back to back: measured with
 * tools/bench/ingest-cpu-probe.ts, the server spent about a fifth of its CPU and the
 * client four fifths of its own in marking, for a live heap of 25-40 MB. The cost is
 * memory: up to twice the live heap more, tens of MB per process here.
 * Call it first thing in a process; V8 reads the factor at each collection.
 */
export function leaveOldGenerationHeadroom(): void {
  setFlagsFromString("--heap-growing-percent=200");
}
