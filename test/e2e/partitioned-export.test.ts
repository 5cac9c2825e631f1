import { describe, expect, it } from "vitest";
import xxhash from "xxhash-wasm";
import { readArtifacts } from "../support/artifact-reader.js";
import { blobNames, newContainer, withSpillwayAndAzurite } from "../support/fixtures.js";

describe("partitioned export over two storage accounts", () => {
  const env = withSpillwayAndAzurite("split");

  it("lands each record under the folder Kusto's rules give, spread over both containers", async () => {
    const [one, two] = [await newContainer(env.azurite, "acct1"), await newContainer(env.azurite, "acct2")];
    await env.sw.catalog.createTable({ name: "Events", columns: [{ name: "Ts", type: "datetime" }, { name: "Key", type: "string" }, { name: "N", type: "long" }] });
    const created = await env.sw.catalog.createExternalTable({
      name: "Lake",
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Ts", type: "datetime" }, { name: "Key", type: "string" }, { name: "N", type: "long" }],
      partitions: [
        { name: "Day", type: "datetime", function: "startofday", column: "Ts" },
        { name: "Shard", type: "long", function: "hash", column: "Key", modulo: 4n },
        { name: "Region", type: "string" },
      ],
      pathFormat: `"day=" datetime_pattern("yyyyMMdd", Day) "/shard=" Shard "/" Region`,
      connectionStrings: [env.azurite.connectionString(`${one}/events`), env.azurite.connectionString(`${two}/events`)],
    });
    expect(created.externalTable!.partitions.map((p) => p.name)).toEqual(["Day", "Shard", "Region"]);
    await env.sw.catalog.createOrAlterContinuousExport({
      name: "Out",
      externalTable: "Lake",
      query: "SELECT Ts, Key, N, CASE WHEN N % 2 = 0 THEN 'even' ELSE 'odd' END AS Region FROM Events",
      properties: { intervalBetweenRuns: { seconds: 3600n } },
    });
    const keys = ["alpha", "beta", "gamma", "delta", "World"];
    const rows = Array.from({ length: 40 }, (_, n) => ({ Ts: `2026-0${1 + (n % 3)}-1${n % 10}T0${n % 10}:00:00Z`, Key: keys[n % keys.length]!, N: n }));
    await env.sw.query.ingest({ table: "Events", format: "json", payload: Buffer.from(rows.map((r) => JSON.stringify(r)).join("\n")) });
    const run = await env.sw.catalog.runContinuousExportNow({ name: "Out" });
    expect(run.result, run.details).toBe("Completed");

    const { h64 } = await xxhash();
    const folderOf = (r: (typeof rows)[number]) =>
      `day=${r.Ts.slice(0, 10).replaceAll("-", "")}/shard=${h64(r.Key) % 4n}/${r.N % 2 === 0 ? "even" : "odd"}`;
    const expectedFolders = [...new Set(rows.map(folderOf))].sort();
    const folders = run.artifacts.map((a) => new URL(a.path).pathname.split("/").slice(4, -1).join("/")).sort();
    expect(folders).toEqual(expectedFolders);
    for (const a of run.artifacts) {
      const inFolder = rows.filter((r) => a.path.includes(`/events/${folderOf(r)}/`));
      expect(a.numRecords).toBe(BigInt(inFolder.length));
    }
    const inOne = await blobNames(env.azurite, one);
    const inTwo = await blobNames(env.azurite, two);
    expect(inOne.length + inTwo.length).toBe(run.artifacts.length);
    expect(Math.abs(inOne.length - inTwo.length)).toBeLessThanOrEqual(1);

    const back = await readArtifacts(env.azurite.client, run.artifacts.map((a) => a.path), "parquet");
    expect(Object.keys(back[0]!)).toEqual(["Ts", "Key", "N"]);
    expect(back.map((r) => Number(r.N)).sort((a, b) => a - b)).toEqual(rows.map((r) => r.N));
  });

  it("refuses bad partition definitions with clear errors", async () => {
    const base = {
      kind: "blob",
      dataFormat: "parquet",
      columns: [{ name: "Ts", type: "datetime" }, { name: "Key", type: "string" }],
      connectionStrings: ["file:///tmp/never"],
    };
    const refused = async (extra: object, message: RegExp) =>
      expect(env.sw.catalog.createExternalTable({ name: "Bad", ...base, ...extra })).rejects.toMatchObject({ code: 3, message: expect.stringMatching(message) });
    await refused({ partitions: [{ name: "P", type: "string", column: "Nope" }] }, /column 'Nope' is not a column of the table/);
    await refused({ partitions: [{ name: "P", type: "datetime", function: "startofday", column: "Key" }] }, /startofday needs a datetime column; column 'Key' is string/);
    await refused({ partitions: [{ name: "P", type: "string", function: "hash", column: "Key", modulo: 4n }] }, /hash\(Key, N\) gives a long partition/);
    await refused({ partitions: [{ name: "P", type: "long", function: "hash", column: "Key" }] }, /modulo N of at least 1/);
    await refused({ partitions: [{ name: "P", type: "datetime", function: "bin", column: "Ts" }] }, /bin needs a positive binSize/);
    await refused({ partitions: [{ name: "P", type: "datetime", function: "endofday", column: "Ts" }] }, /'endofday' is not a partition function/);
    await refused({ partitions: [{ name: "P", type: "string", column: "Key" }], pathFormat: `"p=" Q` }, /pathFormat refers to 'Q', which is not a partition/);
    await refused({ partitions: [{ name: "P", type: "string", column: "Key" }], pathFormat: `"p=` }, /pathFormat: unterminated string/);
    await refused({ partitions: [{ name: "P", type: "string", column: "Key" }], pathFormat: `datetime_pattern("yyyy", P)` }, /datetime_pattern needs a datetime partition/);
    await refused({ partitions: [{ name: "P", type: "string", column: "Key" }, { name: "Q", type: "string" }], pathFormat: `P` }, /partition 'Q' does not appear in pathFormat/);
    await refused({ pathFormat: `"x"` }, /pathFormat needs partitions/);
    await refused({ partitions: [{ name: "Key", type: "string" }] }, /virtual column 'Key' has the name of a stored column/);
    expect((await env.sw.catalog.listExternalTables({})).externalTables.map((t) => t.name)).toEqual(["Lake"]);
  });
});
