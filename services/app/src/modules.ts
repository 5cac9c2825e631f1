import type { ServiceName, Target } from "@spillway/config";

/** Every module, leaves first: an order in which each one's dependencies come before it. */
export const MODULES = ["cursor", "writer", "catalog", "query", "scheduler", "kusto", "console"] as const;
export type ModuleName = (typeof MODULES)[number];

/**
 * Which services each module calls (Grafana Tempo's modules.go is the model): a tree, not a
 * cycle. The cursor service (commit log, export ledger) and the writer are leaves; the
 * catalog reads export states from the cursor service and has the writer clean up storage;
 * the query service reads schemas from the catalog and extents from the cursor service; the
 * scheduler uses all four and no module uses it. The Kusto front door runs commands on the
 * catalog and queries and ingestion on the query service, and no module uses it either; nor
 * the console, which reads the catalog and export backlogs from the cursor service. A
 * module gets clients of exactly these.
 */
export const DEPENDENCIES = {
  cursor: [],
  writer: [],
  catalog: ["cursor", "writer"],
  query: ["catalog", "cursor"],
  scheduler: ["catalog", "cursor", "query", "writer"],
  kusto: ["catalog", "query"],
  console: ["catalog", "cursor"],
} as const satisfies Record<ModuleName, readonly ServiceName[]>;

/** The modules a target runs: `all` runs every one, in one process. */
export function modulesOf(target: Target): ModuleName[] {
  return target === "all" ? [...MODULES] : [target];
}
