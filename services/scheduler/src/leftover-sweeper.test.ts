import { describe, expect, it } from "vitest";
import { ErrorCode, SpillwayError, unavailable } from "@spillway/errors";
import { LeftoverSweeper, type SweeperPeers } from "./leftover-sweeper.js";

type Leftover = { exportId: string; path: string; database: string; externalTable: string };

/** A ledger of leftovers, a catalog of external tables, and a writer that records deletions (or refuses). */
function fakes(leftovers: Leftover[], tables: string[], refuse?: (table: string) => Error | undefined) {
  const kept = [...leftovers];
  const deleted: Array<{ table: string; paths: string[] }> = [];
  const asked: bigint[] = [];
  const peers: SweeperPeers = {
    cursor: {
      listDroppedLeftovers: async (req) => (asked.push(req.olderThanMs ?? 0n), { leftovers: kept.map((l) => ({ ...l })) }) as never,
      forgetDroppedLeftovers: async (req) => {
        for (const path of req.paths ?? []) kept.splice(kept.findIndex((l) => l.exportId === req.exportId && l.path === path), 1);
        return {} as never;
      },
    },
    catalog: {
      planExport: async (req) => {
        if (!tables.includes(req.externalTable ?? "")) throw new SpillwayError(ErrorCode.notFound, `external table '${req.externalTable}' does not exist`);
        return { spec: { externalTable: { name: req.externalTable } } } as never;
      },
    },
    writer: {
      deleteArtifacts: async (req) => {
        const table = req.externalTable?.name ?? "";
        const refusal = refuse?.(table);
        if (refusal) throw refusal;
        deleted.push({ table, paths: req.paths ?? [] });
        return {} as never;
      },
    },
  };
  return { peers, kept, deleted, asked };
}

const left = (exportId: string, path: string, externalTable = "Lake"): Leftover => ({ exportId, path, database: "db", externalTable });

describe("LeftoverSweeper", () => {
  it("deletes a dropped export's leftovers from their external table, one call a table, then forgets them", async () => {
    const { peers, kept, deleted, asked } = fakes([left("x1", "a"), left("x2", "b"), left("x1", "c", "Other")], ["Lake", "Other"]);
    const lines: string[] = [];
    expect(await new LeftoverSweeper(peers, 90_000, (l) => lines.push(l)).sweep()).toBe(3);
    expect(asked).toEqual([90_000n]);
    expect(deleted).toEqual([
      { table: "Lake", paths: ["a", "b"] },
      { table: "Other", paths: ["c"] },
    ]);
    expect(kept).toEqual([]);
    expect(lines).toEqual([]);
  });

  it("keeps them for the next sweep when storage cannot be reached now", async () => {
    const { peers, kept, deleted } = fakes([left("x1", "a"), left("x2", "b", "Other")], ["Lake", "Other"], (t) => (t === "Lake" ? unavailable("storage did not answer") : undefined));
    const lines: string[] = [];
    expect(await new LeftoverSweeper(peers, 1, (l) => lines.push(l)).sweep()).toBe(1);
    expect(deleted).toEqual([{ table: "Other", paths: ["b"] }]);
    expect(kept).toEqual([left("x1", "a")]);
    expect(lines).toEqual([expect.stringMatching(/could not remove 1 files .* 'Lake' .* will retry: storage did not answer/)]);
  });

  it("forgets, saying which, those whose external table is gone: they cannot be reached", async () => {
    const { peers, kept, deleted } = fakes([left("x1", "a", "Gone")], ["Lake"]);
    const lines: string[] = [];
    expect(await new LeftoverSweeper(peers, 1, (l) => lines.push(l)).sweep()).toBe(0);
    expect(deleted).toEqual([]);
    expect(kept).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(/1 files .* 'Gone' .* cannot be removed, and are forgotten: external table 'Gone' does not exist; they are a/)]);
  });
});
