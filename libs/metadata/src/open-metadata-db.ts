import { join } from "node:path";
import { DuckMetadataDb } from "./duck-metadata-db.js";
import type { MetadataDb } from "./metadata-db.js";
import { PostgresMetadataDb } from "./postgres-metadata-db.js";

/** Where a store's tables live: PostgreSQL at `metadataUrl` when given, else `<dataDir>/<file>` (DuckDB). */
export function openMetadataDb(metadataUrl: string | undefined, dataDir: string, file: string): Promise<MetadataDb> {
  return metadataUrl ? PostgresMetadataDb.open(metadataUrl) : DuckMetadataDb.open(join(dataDir, file));
}
