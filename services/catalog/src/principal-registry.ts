import { create } from "@bufbuild/protobuf";
import { parseDatabaseRole, parsePrincipalFqn, parseTableRole, roleTitle, type DatabaseRole, type TableRole } from "@spillway/auth";
import { invalidArgument, notFound } from "@spillway/errors";
import { databaseName, validateName } from "@spillway/kusto";
import { PrincipalRowSchema, type PrincipalRow } from "@spillway/proto";
import type { CatalogStore, CatalogTransaction } from "./catalog-store.js";

interface Grant {
  role: string;
  fqn: string;
  notes: string;
}

/** Cluster-wide roles come from configuration (the bootstrap), not from the store. */
export interface ClusterRoles {
  admins: readonly string[];
  viewers: readonly string[];
}

/**
 * Who holds which role (SPEC §7): per database admins, users, viewers, monitors and
 * ingestors; per table (or external table) admins and ingestors. Kept in the catalog
 * store as one list of grants per database and per table, so a grant commits with the
 * definition it belongs to (a table's creator becomes its admin in the same transaction).
 */
export class PrincipalRegistry {
  constructor(
    private readonly store: CatalogStore,
    private readonly cluster: ClusterRoles,
  ) {}

  async addDatabasePrincipals(databaseArg: string, roleArg: string, principals: string[], notes: string): Promise<PrincipalRow[]> {
    const database = databaseName(databaseArg);
    const role = parseDatabaseRole(roleArg);
    const fqns = parsePrincipals(principals);
    await this.store.write((tx) => addGrants(tx, database, "", role, fqns, notes));
    return this.showDatabasePrincipals(database);
  }

  async dropDatabasePrincipals(databaseArg: string, roleArg: string, principals: string[]): Promise<PrincipalRow[]> {
    const database = databaseName(databaseArg);
    const role = parseDatabaseRole(roleArg);
    const fqns = parsePrincipals(principals);
    await this.store.write((tx) => dropGrants(tx, database, "", role, fqns));
    return this.showDatabasePrincipals(database);
  }

  async showDatabasePrincipals(databaseArg: string): Promise<PrincipalRow[]> {
    const database = databaseName(databaseArg);
    const clusterRows = [
      ...this.cluster.admins.map((fqn) => principalRow("AllDatabasesAdmin", fqn, "cluster admin (SPILLWAY_CLUSTER_ADMINS)")),
      ...this.cluster.viewers.map((fqn) => principalRow("AllDatabasesViewer", fqn, "cluster viewer (SPILLWAY_CLUSTER_VIEWERS)")),
    ];
    const grants = parseGrants(await this.store.get("principals", database, ""));
    return [...clusterRows, ...grants.map((g) => principalRow(`Database ${database} ${roleTitle(g.role as DatabaseRole)}`, g.fqn, g.notes))];
  }

  async addTablePrincipals(databaseArg: string, tableArg: string, roleArg: string, principals: string[], notes: string): Promise<PrincipalRow[]> {
    const database = databaseName(databaseArg);
    const table = validateName("table", tableArg);
    const role = parseTableRole(roleArg);
    const fqns = parsePrincipals(principals);
    await this.store.write(async (tx) => {
      await assertTableExists(tx, database, table);
      await addGrants(tx, database, table, role, fqns, notes);
    });
    return this.showTablePrincipals(database, table);
  }

  async dropTablePrincipals(databaseArg: string, tableArg: string, roleArg: string, principals: string[]): Promise<PrincipalRow[]> {
    const database = databaseName(databaseArg);
    const table = validateName("table", tableArg);
    const role = parseTableRole(roleArg);
    const fqns = parsePrincipals(principals);
    await this.store.write(async (tx) => {
      await assertTableExists(tx, database, table);
      await dropGrants(tx, database, table, role, fqns);
    });
    return this.showTablePrincipals(database, table);
  }

  async showTablePrincipals(databaseArg: string, tableArg: string): Promise<PrincipalRow[]> {
    const database = databaseName(databaseArg);
    const table = validateName("table", tableArg);
    if (!(await this.store.get("table", database, table)) && !(await this.store.get("external_table", database, table))) {
      throw notFound(`table '${table}' does not exist in database '${database}'`);
    }
    const grants = parseGrants(await this.store.get("principals", database, table));
    return grants.map((g) => principalRow(`Table ${database}.${table} ${roleTitle(g.role as TableRole)}`, g.fqn, g.notes));
  }

  /** The roles `principal` holds in `database`, on the database and on each table. */
  async grantsOf(principal: string, databaseArg: string): Promise<{ databaseRoles: string[]; tableRoles: Array<{ table: string; role: string }> }> {
    const database = databaseName(databaseArg);
    const fqn = principal.toLowerCase();
    const databaseRoles = parseGrants(await this.store.get("principals", database, "")).filter((g) => g.fqn.toLowerCase() === fqn).map((g) => g.role);
    const tableRoles = (await this.store.listNamed("principals", database))
      .filter(({ name }) => name !== "")
      .flatMap(({ name, body }) => parseGrants(body).filter((g) => g.fqn.toLowerCase() === fqn).map((g) => ({ table: name, role: g.role })));
    return { databaseRoles, tableRoles };
  }
}

/** The creator of a table becomes its admin, as in Kusto; part of the creating transaction. */
export async function grantCreatorTableAdmin(tx: CatalogTransaction, database: string, table: string, principal: string): Promise<void> {
  if (!/^(aaduser|aadapp)=/.test(principal)) return;
  await addGrants(tx, database, table, "admins", [principal], "created the table");
}

/** A dropped table takes its grants with it: a table made anew under the name starts with none. */
export async function dropTableGrants(tx: CatalogTransaction, database: string, table: string): Promise<void> {
  await tx.delete("principals", database, table);
}

function parsePrincipals(principals: string[]): string[] {
  if (principals.length === 0) throw invalidArgument("principals is empty: name at least one, as aaduser=<id> or aadapp=<client id>");
  return principals.map(parsePrincipalFqn);
}

async function assertTableExists(tx: CatalogTransaction, database: string, table: string): Promise<void> {
  if (!(await tx.get("table", database, table)) && !(await tx.get("external_table", database, table))) {
    throw notFound(`table '${table}' does not exist in database '${database}'`);
  }
}

async function addGrants(tx: CatalogTransaction, database: string, name: string, role: string, fqns: string[], notes: string): Promise<void> {
  const grants = parseGrants(await tx.get("principals", database, name));
  for (const fqn of fqns) {
    const same = grants.find((g) => g.role === role && g.fqn.toLowerCase() === fqn.toLowerCase());
    if (same) same.notes = notes || same.notes;
    else grants.push({ role, fqn, notes });
  }
  await tx.put("principals", database, name, JSON.stringify(grants));
}

async function dropGrants(tx: CatalogTransaction, database: string, name: string, role: string, fqns: string[]): Promise<void> {
  const drop = new Set(fqns.map((f) => f.toLowerCase()));
  const grants = parseGrants(await tx.get("principals", database, name)).filter((g) => !(g.role === role && drop.has(g.fqn.toLowerCase())));
  await tx.put("principals", database, name, JSON.stringify(grants));
}

function parseGrants(body: string | undefined): Grant[] {
  return body ? (JSON.parse(body) as Grant[]) : [];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A row of .show principals, with Kusto's columns; a principal is known here only by its fqn. */
function principalRow(role: string, fqn: string, notes: string): PrincipalRow {
  const [kind, id = ""] = fqn.split(/=(.*)/s);
  return create(PrincipalRowSchema, {
    role,
    principalType: kind!.toLowerCase() === "aadapp" ? "AAD Application" : "AAD User",
    principalDisplayName: id,
    principalObjectId: GUID.test(id) ? id : "",
    principalFqn: fqn,
    notes,
  });
}
