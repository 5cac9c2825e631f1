import { invalidArgument } from "@spillway/errors";

// Kusto's security roles (SPEC §7): per database admins, users, viewers, monitors and
// ingestors; per table admins and ingestors; cluster-wide admins and viewers from config.
export const DATABASE_ROLES = ["admins", "users", "viewers", "monitors", "ingestors"] as const;
export const TABLE_ROLES = ["admins", "ingestors"] as const;
export type DatabaseRole = (typeof DATABASE_ROLES)[number];
export type TableRole = (typeof TABLE_ROLES)[number];

/**
 * The least right an RPC needs (SPEC §7's table):
 * - databaseAdmin: continuous exports and database principals;
 * - databaseUser: creating tables and external tables;
 * - databaseViewer: reading data (query);
 * - databaseMonitor: reading metadata (shows, lists of exports, artifacts, failures);
 * - tableAdmin: altering or dropping one table or external table, its principals;
 * - tableIngestor: ingesting into one table;
 * - tableMetadata: seeing one table's definition (its readers, monitors, admins and ingestors);
 * - databaseUserOrTableAdmin: create-or-alter of one table, which is a create (Database
 *   User) or an alter (Table Admin); the catalog, which knows which, narrows it;
 * - authenticated: any known caller; the handler shows only what the caller may see.
 */
export type Requirement =
  | "databaseAdmin"
  | "databaseUser"
  | "databaseViewer"
  | "databaseMonitor"
  | "tableAdmin"
  | "tableIngestor"
  | "tableMetadata"
  | "databaseUserOrTableAdmin"
  | "authenticated";

/** Who is calling and what they may do in the call's database. */
export interface Caller {
  /** aaduser=…, aadapp=…, `anonymous` when authentication is off, `spillway` for another service. */
  readonly principal: string;
  may(requirement: Requirement, table?: string): boolean;
}

/** What one principal holds in one database. */
export interface Grants {
  cluster: "admin" | "viewer" | undefined;
  database: ReadonlySet<DatabaseRole>;
  /** Table (or external table) name → the roles held on it. */
  tables: ReadonlyMap<string, ReadonlySet<TableRole>>;
}

export const ALL_RIGHTS: Grants = { cluster: "admin", database: new Set(), tables: new Map() };

/** Whether `grants` meet `requirement`; table requirements name the table. */
export function satisfies(grants: Grants, requirement: Requirement, table?: string): boolean {
  if (grants.cluster === "admin") return true;
  const db = grants.database;
  const onTable = table === undefined ? undefined : grants.tables.get(table);
  const reads = grants.cluster === "viewer" || db.has("admins") || db.has("users") || db.has("viewers");
  switch (requirement) {
    case "authenticated":
      return true;
    case "databaseAdmin":
      return db.has("admins");
    case "databaseUser":
      return db.has("admins") || db.has("users");
    case "databaseViewer":
      return reads;
    case "databaseMonitor":
      return reads || db.has("monitors");
    case "tableAdmin":
      return db.has("admins") || !!onTable?.has("admins");
    case "tableIngestor":
      return db.has("admins") || db.has("ingestors") || !!onTable?.has("admins") || !!onTable?.has("ingestors");
    case "databaseUserOrTableAdmin":
      return satisfies(grants, "databaseUser") || satisfies(grants, "tableAdmin", table);
    case "tableMetadata":
      return satisfies(grants, "databaseMonitor") || satisfies(grants, "tableIngestor", table);
  }
}

export function parseDatabaseRole(text: string): DatabaseRole {
  const role = text.trim().toLowerCase();
  if (!(DATABASE_ROLES as readonly string[]).includes(role)) {
    throw invalidArgument(`database role '${text}' is not one of ${DATABASE_ROLES.join(", ")}`);
  }
  return role as DatabaseRole;
}

export function parseTableRole(text: string): TableRole {
  const role = text.trim().toLowerCase();
  if (!(TABLE_ROLES as readonly string[]).includes(role)) {
    throw invalidArgument(`table role '${text}' is not one of ${TABLE_ROLES.join(", ")}`);
  }
  return role as TableRole;
}

/** Kusto's singular role name as .show principals prints it: admins → Admin. */
export function roleTitle(role: DatabaseRole | TableRole): string {
  return role[0]!.toUpperCase() + role.slice(1, -1);
}
