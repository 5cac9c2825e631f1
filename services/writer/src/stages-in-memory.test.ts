import { describe, expect, it } from "vitest";
import { StagesInMemory } from "./stages-in-memory.js";

const stage = (artifacts: number) => ({ artifacts: Array.from({ length: artifacts }, (_, i) => i) });

describe("StagesInMemory", () => {
  it("keeps stages until their artifacts pass the budget, then lets the oldest go", () => {
    const kept = new StagesInMemory(5);
    kept.keep("a", stage(2));
    kept.keep("b", stage(2));
    kept.keep("c", stage(1));
    expect(kept.size).toBe(5);
    kept.keep("d", stage(2));
    expect(kept.get("a")).toBeUndefined();
    expect(["b", "c", "d"].map((id) => kept.get(id)?.artifacts.length)).toEqual([2, 1, 2]);
    expect(kept.size).toBe(5);
    kept.keep("e", stage(4));
    expect(["b", "c", "d", "e"].map((id) => kept.get(id)?.artifacts.length)).toEqual([undefined, undefined, undefined, 4]);
    expect(kept.size).toBe(4);
  });

  it("does not keep a stage larger than the whole budget, nor let others go for it", () => {
    const kept = new StagesInMemory(5);
    kept.keep("a", stage(3));
    kept.keep("big", stage(6));
    expect(kept.get("big")).toBeUndefined();
    expect(kept.get("a")?.artifacts.length).toBe(3);
  });

  it("counts a stage kept again once, and forgets what it is told to", () => {
    const kept = new StagesInMemory(5);
    kept.keep("a", stage(3));
    kept.keep("a", stage(4));
    expect(kept.size).toBe(4);
    kept.forget("a");
    kept.forget("unknown");
    expect(kept.size).toBe(0);
    expect(kept.get("a")).toBeUndefined();
  });
});
