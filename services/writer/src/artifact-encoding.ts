import type { ExternalTable } from "@spillway/proto";

/** The artifact's file name: prefix, the run's stem, the format's extension (and .gz). */
export function artifactFileName(table: ExternalTable, stem: string): string {
  const p = table.properties;
  const ext = p?.fileExtension ? p.fileExtension.replace(/^\./, "") : table.dataFormat;
  return `${p?.namePrefix ?? ""}${stem}.${ext}${p?.compressed && table.dataFormat !== "parquet" ? ".gz" : ""}`;
}
