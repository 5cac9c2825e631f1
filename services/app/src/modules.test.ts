import { describe, expect, it } from "vitest";
import { DEPENDENCIES, MODULES, modulesOf } from "./modules.js";

describe("the module graph", () => {
  it("lists every module after the modules it depends on, so it has no cycle", () => {
    const seen = new Set<string>();
    for (const module of MODULES) {
      for (const dependency of DEPENDENCIES[module]) expect(seen.has(dependency), `${module} needs ${dependency} first`).toBe(true);
      seen.add(module);
    }
  });

  it("keeps the cursor service and the writer leaves, and no module depends on the scheduler, the Kusto front door or the console", () => {
    expect(DEPENDENCIES.cursor).toEqual([]);
    expect(DEPENDENCIES.writer).toEqual([]);
    for (const top of ["scheduler", "kusto", "console"]) {
      expect(Object.values(DEPENDENCIES).some((deps) => (deps as readonly string[]).includes(top)), top).toBe(false);
    }
  });

  it("runs every module for the all target, one for any other", () => {
    expect(modulesOf("all")).toEqual([...MODULES]);
    expect(modulesOf("scheduler")).toEqual(["scheduler"]);
    expect(modulesOf("kusto")).toEqual(["kusto"]);
    expect(modulesOf("console")).toEqual(["console"]);
  });
});
