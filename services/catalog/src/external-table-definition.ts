import { create } from "@bufbuild/protobuf";
import { invalidArgument, SpillwayError } from "@spillway/errors";
import { durationMs, normalizeColumns, pathTokens, validateName, validatePartitions } from "@spillway/kusto";
import { ExternalTablePropertiesSchema, ExternalTableSchema, type CreateExternalTableRequest, type ExternalTable } from "@spillway/proto";
import { allowedRoots, confineFileTarget, maskConnectionString, parseConnectionString, type FileTargetPolicy } from "@spillway/storage";

export const DATA_FORMATS = ["csv", "tsv", "json", "parquet"] as const;
const INCLUDE_HEADERS = ["none", "all", "firstFile"];
const ENCODINGS = ["UTF8NoBOM", "UTF8BOM"];
const PARQUET_COMPRESSIONS = ["snappy", "gzip", "zstd", "lz4_raw", "brotli"];

function oneOf(value: string, allowed: readonly string[], what: string, caseInsensitive = true): string {
  const found = allowed.find((a) => (caseInsensitive ? a.toLowerCase() === value.toLowerCase() : a === value));
  if (found === undefined) throw invalidArgument(`${what} '${value}' is not supported; use one of ${allowed.join(", ")}`);
  return found;
}

/** Checks a create request and returns the external table as it is stored (secrets included). */
export function externalTableFromRequest(database: string, req: Omit<CreateExternalTableRequest, "$typeName">): ExternalTable {
  const name = validateName("external table", req.name);
  const where = `external table '${name}'`;
  const kind = oneOf(req.kind || "blob", ["blob", "delta", "storage"], `${where}: kind`).replace("storage", "blob");
  if (kind === "delta") checkDeltaRequest(req, where);
  if (!req.dataFormat && kind !== "delta") throw invalidArgument(`${where}: dataFormat is required (${DATA_FORMATS.join(", ")})`);
  const dataFormat = kind === "delta" ? "parquet" : oneOf(req.dataFormat, DATA_FORMATS, `${where}: dataFormat`);
  const columns = normalizeColumns(req.columns, where);
  const partitions = validatePartitions(
    req.partitions.map((p) => ({ ...p, binSizeMs: durationMs(p.binSize) })),
    columns,
    where,
  );
  pathTokens(req.pathFormat, partitions, where);
  if (req.connectionStrings.length === 0) {
    throw invalidArgument(`${where}: at least one connection string is required (a blob container URL with a key or SAS, or file:///path)`);
  }
  req.connectionStrings.forEach((cs) => parseConnectionString(cs));

  const p = req.properties;
  const textFormat = dataFormat !== "parquet";
  if (p?.includeHeaders && !textFormat) throw invalidArgument(`${where}: includeHeaders applies to csv and tsv only, not ${dataFormat}`);
  if (p?.compressionType && textFormat) throw invalidArgument(`${where}: compressionType applies to parquet only; use compressed for ${dataFormat}`);
  if (p?.includeHeaders && dataFormat === "json") throw invalidArgument(`${where}: includeHeaders applies to csv and tsv only, not json`);
  if (p?.fileExtension && !/^\.?[A-Za-z0-9_.-]{1,32}$/.test(p.fileExtension)) {
    throw invalidArgument(`${where}: fileExtension '${p.fileExtension}' may only hold letters, digits, '_', '-' and '.'`);
  }
  if (p?.namePrefix && !/^[A-Za-z0-9_.-]{1,128}$/.test(p.namePrefix)) {
    throw invalidArgument(`${where}: namePrefix '${p.namePrefix}' may only hold letters, digits, '_', '-' and '.'`);
  }
  const properties = create(ExternalTablePropertiesSchema, {
    includeHeaders: textFormat && dataFormat !== "json" ? oneOf(p?.includeHeaders || "none", INCLUDE_HEADERS, `${where}: includeHeaders`) : "",
    compressed: p?.compressed ?? false,
    namePrefix: p?.namePrefix ?? "",
    fileExtension: p?.fileExtension ?? "",
    encoding: oneOf(p?.encoding || "UTF8NoBOM", ENCODINGS, `${where}: encoding`),
    compressionType: textFormat ? "" : oneOf(p?.compressionType || "snappy", PARQUET_COMPRESSIONS, `${where}: compressionType`),
    folder: p?.folder ?? "",
    docString: p?.docString ?? "",
  });
  return create(ExternalTableSchema, {
    database,
    name,
    kind,
    dataFormat,
    columns,
    partitions: req.partitions.map((p, i) => ({
      name: partitions[i]!.name,
      type: partitions[i]!.type,
      function: partitions[i]!.function,
      column: partitions[i]!.column,
      modulo: partitions[i]!.modulo,
      binSize: p.function.toLowerCase() === "bin" ? p.binSize : undefined,
    })),
    pathFormat: req.pathFormat.trim(),
    connectionStrings: req.connectionStrings.map((s) => s.trim()),
    properties,
  });
}

/** Delta tables (SPEC §5): Parquet data files, one location, Hive-style string/datetime partitions. */
function checkDeltaRequest(req: Omit<CreateExternalTableRequest, "$typeName">, where: string): void {
  if (req.dataFormat && req.dataFormat.toLowerCase() !== "parquet" && req.dataFormat.toLowerCase() !== "delta") {
    throw invalidArgument(`${where}: a delta table stores parquet; dataFormat '${req.dataFormat}' does not apply`);
  }
  if (req.connectionStrings.length !== 1) throw invalidArgument(`${where}: a delta table has exactly one connection string (its folder)`);
  if (req.pathFormat) throw invalidArgument(`${where}: a delta table's folders are Hive-style (Name=value); pathFormat does not apply`);
  for (const p of req.partitions) {
    if (p.function.toLowerCase() === "hash" || p.type.toLowerCase() === "long") {
      throw invalidArgument(`${where}: partition '${p.name}': delta tables are partitioned by string or datetime values, not hash`);
    }
  }
  const props = req.properties;
  if (props?.includeHeaders || props?.compressed || props?.namePrefix || props?.fileExtension || (props?.encoding && props.encoding !== "UTF8NoBOM")) {
    throw invalidArgument(`${where}: includeHeaders, compressed, namePrefix, fileExtension and encoding do not apply to delta tables`);
  }
}

/** Refuses a file:// connection string the operator does not allow writing to (SPEC §7); blob URLs pass. */
export async function checkFileTargets(connectionStrings: string[], policy: FileTargetPolicy): Promise<void> {
  for (const cs of connectionStrings) {
    let location;
    try {
      location = parseConnectionString(cs);
    } catch (err) {
      // A malformed file:// target ('..', relative) is told where targets may go, as every other refusal of one is.
      if (/^\s*file:/i.test(cs) && err instanceof SpillwayError) throw new SpillwayError(err.code, `${err.message}${allowedRoots(policy)}`);
      throw err;
    }
    if (location.kind === "folder") await confineFileTarget(location.path, policy);
  }
}

/** The external table as it may be shown: connection-string secrets masked. */
export function maskedExternalTable(table: ExternalTable): ExternalTable {
  return { ...table, connectionStrings: table.connectionStrings.map(maskConnectionString) };
}
