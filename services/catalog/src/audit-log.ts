import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Caller } from "@spillway/auth";
import { redactSecrets } from "@spillway/errors";
import { databaseName } from "@spillway/kusto";
import { CommandRecordSchema, type CommandRecord } from "@spillway/proto";
import type { CatalogStore } from "./catalog-store.js";

/**
 * The record of management calls (SPEC §7, Kusto's .show commands): who, what, when,
 * result. Secrets are masked once more on the way in, whoever recorded the call.
 */
export class AuditLog {
  constructor(private readonly store: CatalogStore) {}

  async record(c: CommandRecord): Promise<void> {
    await this.store.recordCommand({
      startedOn: c.startedOn ? timestampDate(c.startedOn) : new Date(),
      durationMs: c.duration ? durationMs(c.duration) : 0,
      principal: c.principal,
      commandType: c.commandType,
      database: databaseName(c.database),
      object: c.object,
      state: c.state,
      failureReason: redactSecrets(c.failureReason),
      text: redactSecrets(c.text),
      commandId: c.commandId,
    });
  }

  /** A database's admins see every call in it; anyone else only their own (as in Kusto). */
  async show(databaseArg: string, caller: Caller): Promise<CommandRecord[]> {
    const all = await this.store.listCommands(databaseName(databaseArg));
    const visible = caller.may("databaseAdmin") ? all : all.filter((c) => c.principal === caller.principal);
    return visible.map((c) =>
      create(CommandRecordSchema, {
        startedOn: timestampFromDate(c.startedOn),
        duration: durationFromMs(c.durationMs),
        principal: c.principal,
        commandType: c.commandType,
        database: c.database,
        object: c.object,
        state: c.state,
        failureReason: c.failureReason,
        text: c.text,
        commandId: c.commandId ?? "",
      }),
    );
  }
}
