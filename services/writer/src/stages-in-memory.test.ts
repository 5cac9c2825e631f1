import { describe, expect, it } from "vitest";
import { StagesInMemory } from "./stages-in-memory.js";

const stage = (artifacts: number) => ({ artifacts: Array.from({ length: artifacts }, (_, i) => i) });

describe("StagesInMemory", () => {
  it("counts a stage as itself and its artifacts, and lets the oldest go when the budget is passed", () => {
    const kept = new StagesInMemory(8);
    kept.keep("a", stage(2));
    kept.keep("b", stage(1));
    kept.keep("c", stage(1));
    expect(kept.size).toBe(7);
    kept.keep("d", stage(1));
    expect(["a", "b", "c", "d"].map((id) => kept.get(id)?.artifacts.length)).toEqual([undefined, 1, 1, 1]);
    expect(kept.size).toBe(6);
    kept.keep("e", stage(4));
    expect(["b", "c", "d", "e"].map((id) => kept.get(id)?.artifacts.length)).toEqual([undefined, undefined, 1, 4]);
    expect(kept.size).toBe(7);
  });

  it("bounds stages without artifacts too", () => {
    const kept = new StagesInMemory(3);
    for (const id of ["a", "b", "c", "d"]) kept.keep(id, stage(0));
    expect(["a", "b", "c", "d"].map((id) => kept.get(id) !== undefined)).toEqual([false, true, true, true]);
  });

  it("keeps a stage of exactly the budget, not a larger one, and lets nothing go for the larger one", () => {
    const kept = new StagesInMemory(5);
    kept.keep("exact", stage(4));
    expect(kept.get("exact")?.artifacts.length).toBe(4);
    kept.keep("big", stage(5));
    expect(kept.get("big")).toBeUndefined();
    expect(kept.get("exact")?.artifacts.length).toBe(4);
  });

  it("counts a stage kept again once, drops it when kept again too large, and forgets what it is told to", () => {
    const kept = new StagesInMemory(20);
    kept.keep("a", stage(3));
    kept.keep("a", stage(4));
    expect(kept.size).toBe(5);
    kept.keep("a", stage(30));
    expect(kept.get("a")).toBeUndefined();
    expect(kept.size).toBe(0);
    kept.keep("b", stage(1));
    kept.forget("b");
    kept.forget("unknown");
    expect(kept.size).toBe(0);
    expect(kept.get("b")).toBeUndefined();
  });

  it("counts what a stage was kept as, whatever becomes of its artifacts afterwards", () => {
    const kept = new StagesInMemory(10);
    const s = stage(3);
    kept.keep("a", s);
    s.artifacts.push(4, 5, 6);
    kept.forget("a");
    expect(kept.size).toBe(0);
  });
});
