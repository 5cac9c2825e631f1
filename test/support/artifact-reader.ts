import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import type { BlobServiceClient } from "@azure/storage-blob";

/** The bytes of one artifact, a blob URL or a file:// path. */
export async function downloadArtifact(client: BlobServiceClient, path: string): Promise<Buffer> {
  if (path.startsWith("file://")) return readFileSync(fileURLToPath(path));
  const url = new URL(path);
  const [, , container, ...rest] = url.pathname.split("/");
  return client.getContainerClient(container!).getBlobClient(decodeURIComponent(rest.join("/"))).downloadToBuffer();
}

/** Downloads artifacts (blob URLs or file:// paths) and reads them back with DuckDB, rows as JSON-ready objects. */
export async function readArtifacts(client: BlobServiceClient, paths: string[], format: "parquet" | "csv" | "json", columns?: Record<string, string>): Promise<Array<Record<string, unknown>>> {
  if (paths.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), "artifacts-"));
  try {
    const files: string[] = [];
    for (const [i, path] of paths.entries()) {
      if (path.startsWith("file://")) {
        files.push(fileURLToPath(path));
        continue;
      }
      const body = await downloadArtifact(client, path);
      const file = join(dir, `${i}.${format}`);
      writeFileSync(file, body);
      files.push(file);
    }
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    const list = `[${files.map((f) => `'${f}'`).join(",")}]`;
    const cols = columns ? `, columns = {${Object.entries(columns).map(([k, v]) => `'${k}': '${v}'`).join(", ")}}` : "";
    const source =
      format === "parquet" ? `read_parquet(${list})` : format === "csv" ? `read_csv(${list}, header = false, auto_detect = ${!columns}${cols})` : `read_json(${list}${cols})`;
    const reader = await connection.runAndReadAll(`SELECT * FROM ${source}`);
    const rows = reader.getRowObjectsJson() as Array<Record<string, unknown>>;
    connection.closeSync();
    instance.closeSync();
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
