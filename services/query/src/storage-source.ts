import { open } from "node:fs/promises";
import { ErrorCode, notFound, SpillwayError } from "@spillway/errors";
import { confineFileTarget, maskConnectionString, openStorageTarget, parseConnectionString, type FileTargetPolicy } from "@spillway/storage";

/** Azure Blob Storage's public endpoints, in every cloud. */
const AZURE_BLOB_HOST = /\.blob\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$/i;

/**
 * A blob is read from Azure Blob Storage, or from a storage host an external table of the
 * database already uses (an emulator, a private endpoint): never from any address a caller
 * names, which would let a table ingestor make Spillway fetch from its internal network.
 */
async function checkHost(serviceUrl: string, shown: string, storageHosts: () => Promise<ReadonlySet<string>>): Promise<void> {
  const host = new URL(serviceUrl).host.toLowerCase();
  if (AZURE_BLOB_HOST.test(new URL(serviceUrl).hostname)) return;
  if ((await storageHosts()).has(host)) return;
  throw new SpillwayError(ErrorCode.permissionDenied, `'${shown}' is not on Azure Blob Storage nor on a storage host an external table of this database uses; blobs are ingested from those only`);
}

/**
 * Opens the file or blob a URI names (Kusto's ingestion by reference) for reading: a
 * `file:///` file inside the folders file targets may use (SPEC §7), or an Azure blob with an
 * account key (`;key`) or a SAS (`?sas`), as an external table's connection string is
 * written. Errors name the URI with its secret masked.
 */
export async function openSource(uri: string, files: FileTargetPolicy, storageHosts: () => Promise<ReadonlySet<string>>): Promise<NodeJS.ReadableStream> {
  const shown = maskConnectionString(uri);
  const location = parseConnectionString(uri);
  if (location.kind === "blob") await checkHost(location.serviceUrl, shown, storageHosts);
  if (location.kind === "folder") {
    const real = await confineFileTarget(location.path, files);
    const handle = await open(real, "r").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") throw notFound(`file '${shown}' does not exist`);
      throw new SpillwayError(ErrorCode.failedPrecondition, `file '${shown}' could not be read: ${err.code ?? err.message}`);
    });
    const isFolder = await handle.stat().then(
      (st) => st.isDirectory(),
      async (err: NodeJS.ErrnoException) => {
        await handle.close();
        throw new SpillwayError(ErrorCode.failedPrecondition, `file '${shown}' could not be read: ${err.code ?? err.message}`);
      },
    );
    if (isFolder) {
      await handle.close();
      throw notFound(`'${shown}' is a folder; name the files to ingest`);
    }
    return handle.createReadStream();
  }
  const at = location.prefix.lastIndexOf("/");
  const name = location.prefix.slice(at + 1);
  if (!name) throw notFound(`'${shown}' names a container, not a blob`);
  const folder = openStorageTarget({ ...location, prefix: at < 0 ? "" : location.prefix.slice(0, at) });
  let body: NodeJS.ReadableStream | undefined;
  try {
    body = await folder.openRead(name);
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 403 || status === 401) throw new SpillwayError(ErrorCode.permissionDenied, `storage refused to give blob '${shown}': check its key or SAS`);
    throw new SpillwayError(ErrorCode.unavailable, `blob '${shown}' could not be read (${status ? `HTTP ${status}` : ((err as NodeJS.ErrnoException).code ?? "no answer")}); try again`);
  }
  if (!body) throw notFound(`blob '${shown}' does not exist`);
  return body;
}
