import { describe, expect, it } from "vitest";
import { startSpillwayProcesses } from "./spillway-processes.js";

describe("the process harness", () => {
  it("fails with what the processes said when they cannot start, instead of waiting them out", async () => {
    const err = await startSpillwayProcesses("split", { SPILLWAY_MIN_INTERVAL: "500ms" }).then(
      () => new Error("started, but the configuration is invalid"),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/did not start: a spillway process exited with code 2 before serving/);
    expect(err.message).toContain("min interval must be at least 1s");
  });
});
