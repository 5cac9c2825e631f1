import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "@spillway/errors";
import { databaseName, validateName } from "@spillway/kusto";
import type { QueryService } from "@spillway/proto";
import { requireInternal, type ServiceImpl } from "@spillway/rpc";
import { parseIngestFormat } from "./payload-ingestion.js";
import type { QueryEngine, TableBinding } from "./query-engine.js";
import type { QueryPeers } from "./peer-clients.js";

/** gRPC handlers of QueryService: translation between wire and the engine. */
export function queryHandlers(engine: QueryEngine, peers: QueryPeers): ServiceImpl<typeof QueryService> {
  return {
    async ingest(req) {
      const database = databaseName(req.database);
      const format = parseIngestFormat(req.format);
      const { table } = await peers.catalog.getTable({ database, name: validateName("table", req.table) });
      const extentId = randomUUID();
      const extentName = join("extents", database, table!.name, `${extentId}.parquet`);
      const extent = await engine.ingest(format, req.payload, table!.columns, req.ignoreFirstRecord, extentName);
      if (extent.rows === 0n) {
        await rm(join(engine.dataDir, extent.path), { force: true });
        return { extentId: "", rowCount: 0n, cursor: "" };
      }
      try {
        const { cursor } = await peers.cursor.commitExtent({
          database,
          table: table!.name,
          extentId,
          path: extent.path,
          rowCount: extent.rows,
          sizeBytes: extent.bytes,
        });
        return { extentId, rowCount: extent.rows, cursor };
      } catch (err) {
        // Not committed, so not visible: the file must not linger either.
        await rm(join(engine.dataDir, extent.path), { force: true });
        throw err;
      }
    },

    async *query(req) {
      const database = databaseName(req.database);
      const language = (req.queryLanguage || "sql").toLowerCase();
      if (language !== "sql") throw invalidArgument(`queryLanguage '${req.queryLanguage}' is not supported; use sql`);
      const checked = await engine.check(req.query);
      const { tables } = await peers.catalog.listTables({ database });
      const byName = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
      const named = checked.tables.flatMap((t) => (byName.has(t.toLowerCase()) ? [byName.get(t.toLowerCase())!] : []));
      const { extents } = named.length
        ? await peers.cursor.listExtents({ database, tables: named.map((t) => t.name) })
        : { extents: [] };
      const bindings: TableBinding[] = tables.map((t) => ({
        name: t.name,
        columns: t.columns,
        extentPaths: extents.filter((e) => e.table === t.name).map((e) => e.path),
      }));
      for await (const batch of engine.query(req.query, bindings)) {
        if (batch.columns) yield { columns: batch.columns };
        if (batch.rows) yield { rows: batch.rows.map((row) => fromJson(ListValueSchema, row as JsonValue)) };
      }
    },

    async describeQuery(req) {
      const described = await engine.describe(req.query, req.tables);
      return { columns: described.columns, referencedTables: described.tables };
    },

    async executeToSpool(req, ctx) {
      requireInternal(ctx, "ExecuteToSpool");
      const spool = await engine.executeToSpool(req.query, req.tables, req.outputColumns, req.spoolName);
      return { spoolPath: spool.path, rowCount: spool.rows };
    },
  };
}
