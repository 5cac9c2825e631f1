import { describe, expect, it } from "vitest";
import { satisfies, type DatabaseRole, type Grants, type Requirement, type TableRole } from "./roles.js";

const grants = (database: DatabaseRole[], tables: Record<string, TableRole[]> = {}, cluster?: "admin" | "viewer"): Grants => ({
  cluster,
  database: new Set(database),
  tables: new Map(Object.entries(tables).map(([t, r]) => [t, new Set(r)])),
});

const requirements: Requirement[] = ["databaseAdmin", "databaseUser", "databaseViewer", "databaseMonitor", "tableAdmin", "tableIngestor", "tableMetadata", "databaseUserOrTableAdmin"];
const met = (g: Grants) => requirements.filter((r) => satisfies(g, r, "T"));

describe("Kusto's roles (SPEC §7)", () => {
  it("gives each role what it implies, and nothing more", () => {
    expect(met(grants([]))).toEqual([]);
    expect(met(grants(["admins"]))).toEqual(requirements);
    expect(met(grants(["users"]))).toEqual(["databaseUser", "databaseViewer", "databaseMonitor", "tableMetadata", "databaseUserOrTableAdmin"]);
    expect(met(grants(["viewers"]))).toEqual(["databaseViewer", "databaseMonitor", "tableMetadata"]);
    expect(met(grants(["monitors"]))).toEqual(["databaseMonitor", "tableMetadata"]);
    expect(met(grants(["ingestors"]))).toEqual(["tableIngestor", "tableMetadata"]);
    expect(met(grants([], { T: ["admins"] }))).toEqual(["tableAdmin", "tableIngestor", "tableMetadata", "databaseUserOrTableAdmin"]);
    expect(met(grants([], { T: ["ingestors"] }))).toEqual(["tableIngestor", "tableMetadata"]);
    expect(met(grants([], {}, "viewer"))).toEqual(["databaseViewer", "databaseMonitor", "tableMetadata"]);
    expect(met(grants([], {}, "admin"))).toEqual(requirements);
  });
  it("ties table roles to their table", () => {
    expect(satisfies(grants([], { T: ["admins"] }), "tableAdmin", "Other")).toBe(false);
    expect(satisfies(grants([], { T: ["ingestors"] }), "tableMetadata", "Other")).toBe(false);
  });
});
