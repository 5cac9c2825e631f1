import { create } from "@bufbuild/protobuf";
import { ResourceUsageSchema } from "@spillway/proto";
import { describe, expect, it } from "vitest";
import { RunAccount } from "./run-account.js";

describe("RunAccount", () => {
  it("sums CPU and rows read, keeps the largest peaks, and times each phase in order", async () => {
    let now = 0;
    const account = new RunAccount(() => now);
    account.add(create(ResourceUsageSchema, { cpuTimeUs: 300n, peakProcessMemoryBytes: 900n, peakDuckdbMemoryBytes: 50n, rowsRead: 10n, bytesRead: 1000n }));
    account.add(create(ResourceUsageSchema, { cpuTimeUs: 200n, peakProcessMemoryBytes: 400n, peakDuckdbMemoryBytes: 70n }));
    account.add(undefined);
    await account.phase("query", async () => void (now += 40));
    await expect(account.phase("upload", async () => ((now += 15), Promise.reject(new Error("down"))))).rejects.toThrow("down");
    // Overlapping phases are listed in the order they began, each with its own time.
    let finishFirst: () => void = () => {};
    const longer = account.phase("start", () => new Promise<void>((r) => (finishFirst = r)).then(() => void (now += 30)));
    await account.phase("read", async () => void (now += 5));
    finishFirst();
    await longer;
    account.parts = 3;
    // The oldest record of all the parts' queries; a part that read none does not count.
    account.read("700");
    account.read("");
    account.read("650");
    expect(account.resources([{ numRecords: 4n, sizeBytes: 100n }, { numRecords: 6n, sizeBytes: 50n }])).toEqual({
      usage: { cpuTimeUs: 500n, peakProcessMemoryBytes: 900n, peakDuckdbMemoryBytes: 70n, rowsRead: 10n, bytesRead: 1000n },
      rowsWritten: 10n,
      bytesWritten: 150n,
      phases: [
        { name: "query", durationMs: 40n },
        { name: "upload", durationMs: 15n },
        { name: "start", durationMs: 35n },
        { name: "read", durationMs: 5n },
      ],
      parts: 3,
      oldestRecordCursor: "650",
    });
    expect(new RunAccount().resources([]).oldestRecordCursor).toBe("");
  });
});
