import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { StorageTarget } from "@spillway/storage";

// A test-only Delta reader, written apart from the writer's own log code: replays the log
// from the last checkpoint, applies add/remove, and reads the active files with DuckDB.

export interface DeltaTableContents {
  version: number;
  protocol?: { minReaderVersion: number; minWriterVersion: number };
  metaData?: { schemaString: string; partitionColumns: string[] };
  txns: Record<string, number>;
  files: Array<{ path: string; partitionValues: Record<string, string | null>; stats: string; size: number }>;
  checkpointVersion?: number;
  rows: Array<Record<string, unknown>>;
}

export async function readDeltaTable(target: StorageTarget): Promise<DeltaTableContents> {
  const dir = mkdtempSync(join(tmpdir(), "delta-read-"));
  const instance = await DuckDBInstance.create(":memory:");
  const c = await instance.connect();
  try {
    const out: DeltaTableContents = { version: -1, txns: {}, files: [], rows: [] };
    const active = new Map<string, DeltaTableContents["files"][number]>();
    const apply = (a: Record<string, any>) => {
      if (a.protocol) out.protocol = a.protocol;
      if (a.metaData) out.metaData = a.metaData;
      if (a.txn) out.txns[a.txn.appId] = Math.max(a.txn.version, out.txns[a.txn.appId] ?? -1);
      if (a.add) active.set(a.add.path, a.add);
      if (a.remove) active.delete(a.remove.path);
    };
    let from = 0;
    const last = await target.read("_delta_log/_last_checkpoint");
    if (last) {
      const v = (JSON.parse(last.toString()) as { version: number }).version;
      const file = join(dir, "cp.parquet");
      writeFileSync(file, (await target.read(`_delta_log/${String(v).padStart(20, "0")}.checkpoint.parquet`))!);
      for (const [j] of (await c.runAndReadAll(`SELECT to_json(t)::VARCHAR FROM read_parquet('${file}') t`)).getRows()) {
        const row = JSON.parse(String(j)) as Record<string, unknown>;
        apply(Object.fromEntries(Object.entries(row).filter(([, val]) => val !== null)));
      }
      out.checkpointVersion = v;
      out.version = v;
      from = v + 1;
    }
    const versions = (await target.list("_delta_log/"))
      .map((n) => /^_delta_log\/(\d{20})\.json$/.exec(n)?.[1])
      .filter((x): x is string => !!x)
      .map(Number)
      .filter((v) => v >= from)
      .sort((a, b) => a - b);
    for (const v of versions) {
      if (v !== out.version + 1) throw new Error(`the Delta log skips from version ${out.version} to ${v}`);
      for (const line of (await target.read(`_delta_log/${String(v).padStart(20, "0")}.json`))!.toString().split("\n")) if (line.trim()) apply(JSON.parse(line));
      out.version = v;
    }
    out.files = [...active.values()];
    const types = new Map((JSON.parse(out.metaData?.schemaString ?? '{"fields":[]}') as { fields: Array<{ name: string; type: string }> }).fields.map((f) => [f.name, f.type]));
    for (const [i, f] of out.files.entries()) {
      const local = join(dir, `${i}.parquet`);
      const body = await target.read(decodeURIComponent(f.path));
      if (!body) throw new Error(`the Delta log references ${f.path}, which is missing`);
      writeFileSync(local, body);
      const partitions = Object.entries(f.partitionValues)
        .map(([k, v]) => `CAST(${v === null ? "NULL" : `'${v.replaceAll("'", "''")}'`} AS ${types.get(k) === "timestamp" ? "TIMESTAMP" : "VARCHAR"}) AS "${k}"`)
        .join(", ");
      const rows = (await c.runAndReadAll(`SELECT *${partitions ? `, ${partitions}` : ""} FROM read_parquet('${local}')`)).getRowObjectsJson();
      for (const row of rows as Array<Record<string, unknown>>) out.rows.push(row);
    }
    return out;
  } finally {
    c.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}
