import { describe, expect, it } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { ManifestWriter, type ManifestPeers } from "./manifest-writer.js";

const due = (key: string, externalTable = "Lake") => ({ key, database: "db", externalTable, name: `_spillway/manifests/E/${key}.json`, bodyJson: "{}" });

describe("ManifestWriter", () => {
  it("writes each due manifest and forgets it; one that fails waits, without holding back the others", async () => {
    let now = 0;
    const pending = [due("1", "Broken"), due("2"), due("3", "Dropped")];
    const written: string[] = [];
    const peers: ManifestPeers = {
      catalog: {
        planExport: async (req) => {
          if (req.externalTable === "Dropped") throw new SpillwayError(ErrorCode.notFound, "external table 'Dropped' does not exist");
          return { spec: { externalTable: { name: req.externalTable } } } as never;
        },
      },
      cursor: {
        listDueManifests: async () => ({ manifests: [...pending] }) as never,
        forgetManifest: async (req) => (pending.splice(pending.findIndex((m) => m.key === req.key), 1), {}) as never,
      },
      writer: {
        writeManifest: async (req) => {
          if (req.externalTable?.name === "Broken") throw new SpillwayError(ErrorCode.permissionDenied, "storage refused");
          written.push(req.name ?? "");
          return {} as never;
        },
      },
    };
    const lines: string[] = [];
    const writer = new ManifestWriter(peers, { now: () => now, log: (l) => lines.push(l) });
    await writer.writeDue();
    // Written; the dropped table's is forgotten; the failing one stays due.
    expect(written).toEqual(["_spillway/manifests/E/2.json"]);
    expect(pending.map((m) => m.key)).toEqual(["1"]);
    expect(lines).toEqual([expect.stringContaining("manifest _spillway/manifests/E/1.json not written yet (storage refused)"), expect.stringContaining("external table 'Dropped' no longer exists")]);
    // Not tried again before its delay, and said once while the reason stays the same.
    await writer.writeDue();
    now += 1000;
    await writer.writeDue();
    expect(lines).toHaveLength(2);
    expect(pending.map((m) => m.key)).toEqual(["1"]);
  });
});
