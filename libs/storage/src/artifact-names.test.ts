import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { ExternalTableSchema } from "@spillway/proto";
import { plannedArtifactPaths, spreadKeyOf } from "./artifact-names.js";

const table = (init: Parameters<typeof create<typeof ExternalTableSchema>>[1]) => create(ExternalTableSchema, { name: "Lake", dataFormat: "parquet", ...init });

describe("plannedArtifactPaths", () => {
  it("names each encoded file after the stem, spread over the connection strings from the stem's key, without their secrets", () => {
    const stem = "abcd1234_3_feedbeef";
    const t = table({
      connectionStrings: [
        "https://acct.blob.core.windows.net/lake/events;SECRETKEY==",
        "https://acct.blob.core.windows.net/lake2?sv=2024&sig=SECRETSIG",
      ],
    });
    const paths = plannedArtifactPaths(t, stem, 3)!;
    const first = spreadKeyOf(stem) % 2;
    const urls = ["https://acct.blob.core.windows.net/lake/events", "https://acct.blob.core.windows.net/lake2"];
    expect(paths).toEqual([0, 1, 2].map((k) => `${urls[(k + first) % 2]}/${stem}_${k}.parquet`));
    expect(paths.join(" ")).not.toMatch(/SECRET/);
  });

  it("names files in a folder as file:// paths, with the table's prefix and extension", () => {
    const t = table({ dataFormat: "csv", connectionStrings: ["file:///data/lake/"], properties: { namePrefix: "x-", compressed: true } });
    expect(plannedArtifactPaths(t, "s", 1)).toEqual(["file:///data/lake/x-s_0.csv.gz"]);
  });

  it("plans nothing where the names depend on the rows or the writer, or there is nothing to name", () => {
    const cs = ["file:///data/lake"];
    expect(plannedArtifactPaths(table({ connectionStrings: cs, partitions: [{ name: "P", type: "string", column: "Key" }] }), "s", 2)).toBeUndefined();
    expect(plannedArtifactPaths(table({ connectionStrings: cs, kind: "delta" }), "s", 2)).toBeUndefined();
    expect(plannedArtifactPaths(table({ connectionStrings: cs }), "s", 0)).toBeUndefined();
    expect(plannedArtifactPaths(table({ connectionStrings: ["not a connection string"] }), "s", 1)).toBeUndefined();
  });
});
