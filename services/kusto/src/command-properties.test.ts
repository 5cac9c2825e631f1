import { describe, expect, it } from "vitest";
import { ErrorCode, SpillwayError } from "@spillway/errors";
import { exportProperties, externalTableProperties, ingestProperties, tableProperties } from "./command-properties.js";

function refusal(f: () => unknown): SpillwayError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(SpillwayError);
    expect((err as SpillwayError).code).toBe(ErrorCode.invalidArgument);
    return err as SpillwayError;
  }
  throw new Error("accepted, but should have been refused");
}

describe("with (...) properties of commands", () => {
  it("reads a continuous export's properties into their types, names matched without regard to case", () => {
    expect(exportProperties({ IntervalBetweenRuns: "10m", forcedlatency: "1h", sizeLimit: "9223372036854775807", distributed: "False", parquetRowGroupSize: "500", managedIdentity: "system" })).toEqual({
      intervalBetweenRuns: { seconds: 600n, nanos: 0 },
      forcedLatency: { seconds: 3600n, nanos: 0 },
      sizeLimit: 9223372036854775807n,
      distributed: false,
      parquetRowGroupSize: 500,
      managedIdentity: "system",
    });
  });

  it("refuses a property it does not know, naming it and the ones it knows, rather than ignore it", () => {
    const e = refusal(() => exportProperties({ intervalBetweenRuns: "1m", distribution: "per_node" }));
    expect(e.message).toContain("unknown property 'distribution'");
    expect(e.message).toContain("intervalBetweenRuns");
    expect(refusal(() => tableProperties({ docstring: "d", folder: "f" })).message).toContain("unknown property 'folder'");
    expect(refusal(() => externalTableProperties({ dryRun: "true" })).message).toContain("unknown property 'dryRun'");
    expect(refusal(() => ingestProperties({ format: "csv", creationTime: "2024-01-01" })).message).toContain("unknown property 'creationTime'");
  });

  it("refuses values of the wrong type and a property given twice", () => {
    expect(refusal(() => exportProperties({ distributed: "yes" })).message).toContain("'yes' is not a bool");
    expect(refusal(() => exportProperties({ sizeLimit: "1e9" })).message).toContain("'1e9' is not a long");
    expect(refusal(() => exportProperties({ parquetRowGroupSize: "3000000000" })).message).toContain("is not an int");
    expect(refusal(() => exportProperties({ intervalBetweenRuns: "soon" })).message).toContain("is not a timespan");
    expect(refusal(() => externalTableProperties({ docString: "a", DocString: "b" })).message).toContain("given twice");
  });

  it("gives an external table only the properties named, and an ingestion CSV unless told otherwise", () => {
    expect(externalTableProperties({ includeHeaders: "all", compressed: "true", folder: "lake" })).toEqual({ includeHeaders: "all", compressed: true, folder: "lake" });
    expect(ingestProperties({})).toEqual({ format: "csv", ignoreFirstRecord: false, ingestByTags: [], ingestIfNotExists: [] });
    expect(ingestProperties({ Format: "json", ignoreFirstRecord: "true" })).toEqual({ format: "json", ignoreFirstRecord: true, ingestByTags: [], ingestIfNotExists: [] });
  });

  it("reads an ingestion's ingest-by tags and ingestIfNotExists as Kusto writes them, and refuses other tags", () => {
    expect(ingestProperties({ tags: '["ingest-by:b7"]', ingestIfNotExists: '["b7"]' })).toMatchObject({ ingestByTags: ["b7"], ingestIfNotExists: ["b7"] });
    expect(refusal(() => ingestProperties({ tags: '["drop-by:x"]' })).message).toContain("tags 'drop-by:x' are not supported; only ingest-by: tags are");
    expect(refusal(() => ingestProperties({ ingestIfNotExists: "b7" })).message).toContain("ingestIfNotExists must be a JSON array of strings");
    expect(tableProperties({ DocString: "events" })).toEqual({ docString: "events" });
  });
});
