import { afterAll, beforeAll, expect, it } from "vitest";
import { context, trace } from "@opentelemetry/api";
import { create } from "@bufbuild/protobuf";
import { ExportSpecSchema, type ExportSpec } from "@spillway/proto";
import { startTelemetry, type Telemetry } from "@spillway/telemetry";
import type { RunOutcome } from "./export-runner.js";
import { RunRequestListener } from "./run-request-listener.js";
import { waitFor } from "../../../test/support/free-port.js";

// The SDK as a Spillway process starts it, with no exporter: trace context propagates.
let telemetry: Telemetry;
beforeAll(() => {
  telemetry = startTelemetry("run-request-listener-test", {}, {});
});
afterAll(() => telemetry.shutdown());

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

it("runs an asked-for run in the trace of the call that asked, and tells the scheduler of it outside that trace", async () => {
  const spec = create(ExportSpecSchema, { id: "id-E", database: "db", name: "E" });
  const traces: Record<string, string | undefined> = {};
  const traceNow = () => trace.getSpanContext(context.active())?.traceId;
  const completed: unknown[] = [];
  const outcome: RunOutcome = { runId: "r1", result: "Completed", from: 0n, to: 1n, artifacts: [], details: "" };
  const peers = {
    catalog: { listExportSpecs: async () => ({ specs: [spec] }) },
    cursor: {
      watchRunRequests: () =>
        (async function* () {
          yield { requestId: "q1", database: "db", name: "E", traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`, tracestate: "" };
          await new Promise(() => undefined);
        })(),
      completeRunRequest: async (c: unknown) => (completed.push(c), {}),
    },
  };
  const runner = {
    runAsked: async (_: ExportSpec) => {
      traces.run = traceNow();
      return outcome;
    },
  };
  const told: ExportSpec[] = [];
  const listener = new RunRequestListener(runner, peers as never, () => undefined, (s) => {
    traces.told = traceNow();
    told.push(s);
  });
  listener.start();
  await waitFor("the run's completion", async () => (completed.length ? true : undefined), 5_000);
  void listener.stop();
  expect(traces.run).toBe(TRACE_ID);
  expect(told).toEqual([spec]);
  // What the scheduler starts from here (ticks, the runs they launch) is no part of the request's trace.
  expect(traces.told).toBeUndefined();
  expect(completed[0]).toMatchObject({ requestId: "q1", outcome: { runId: "r1", result: "Completed" } });
});
