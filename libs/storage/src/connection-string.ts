import { invalidArgument, unimplemented } from "@spillway/errors";

export type StorageLocation =
  | { kind: "folder"; path: string }
  | {
      kind: "blob";
      /** Service URL, e.g. https://acct.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1 */
      serviceUrl: string;
      accountName: string;
      container: string;
      /** Folder inside the container, no leading or trailing slash; may be empty. */
      prefix: string;
      auth: { kind: "key"; key: string } | { kind: "sas"; token: string } | { kind: "identity"; id: string };
    };

const MASK = "*******";

/**
 * Parses a storage connection string in Kusto's form: the container (and folder) URL
 * followed by `;<account key>`, `?<SAS token>` or `;managed_identity=system|<id>`;
 * or a local folder as `file:///absolute/path` (where it may be is the file target policy's business).
 */
export function parseConnectionString(text: string): StorageLocation {
  const s = text.trim();
  if (/^file:/i.test(s)) return { kind: "folder", path: folderOf(s) };
  const m = /^(https?:\/\/[^;?]+)(?:([;?])(.*))?$/i.exec(s);
  if (!m) {
    throw invalidArgument(
      `connection string '${maskConnectionString(s)}' is neither a blob container URL (https://account.blob.core.windows.net/container;key) nor a file:/// folder`,
    );
  }
  const [, urlText, sep, secret = ""] = m;
  let url: URL;
  try {
    url = new URL(urlText!);
  } catch {
    throw invalidArgument(`connection string '${maskConnectionString(s)}' has an invalid URL`);
  }
  const segments = url.pathname.split("/").filter(Boolean);
  // Azurite and other emulators use path-style URLs: /<account>/<container>/...
  const pathStyle = /^(\d+\.\d+\.\d+\.\d+|localhost|\[.*\])$/i.test(url.hostname);
  const accountName = pathStyle ? segments.shift() : url.hostname.split(".")[0];
  const container = segments.shift();
  if (!accountName || !container) {
    throw invalidArgument(`connection string '${maskConnectionString(s)}' names no container; add /<container> to the URL`);
  }
  const serviceUrl = `${url.protocol}//${url.host}${pathStyle ? `/${accountName}` : ""}`;
  let auth: Extract<StorageLocation, { kind: "blob" }>["auth"];
  if (sep === "?") {
    auth = { kind: "sas", token: secret };
  } else if (sep === ";" && /^managed_identity=/i.test(secret)) {
    auth = { kind: "identity", id: secret.slice("managed_identity=".length) };
  } else if (sep === ";" && secret) {
    auth = { kind: "key", key: secret };
  } else {
    throw invalidArgument(
      `connection string '${maskConnectionString(s)}' has no credentials; append ;<account key>, ?<SAS token> or ;managed_identity=system`,
    );
  }
  if (auth.kind === "identity") {
    throw unimplemented("managed identities are not available in this deployment; use an account key or a SAS token");
  }
  return { kind: "blob", serviceUrl, accountName, container, prefix: segments.join("/"), auth };
}

/** The folder of `file:///absolute/path`; `file://localhost/path` is the same folder. */
function folderOf(uri: string): string {
  // Anything else is relative or names another host: `file:x` and `file://x/y` would
  // otherwise parse as /x and /y, somewhere the operator never meant.
  const m = /^file:\/\/(?:localhost)?(\/[^?#]*)/i.exec(uri);
  if (!m) throw invalidArgument(`connection string '${uri}' is not an absolute file:/// URI; write file:///absolute/path`);
  let written: string;
  let path: string;
  try {
    written = decodeURIComponent(m[1]!);
    path = decodeURIComponent(new URL(uri).pathname);
  } catch {
    throw invalidArgument(`connection string '${uri}' is not a valid file:/// URI`);
  }
  // The URL parser folds '..' away; judged on the text as written, it is refused instead.
  if (written.split(/[\\/]/).includes("..")) throw invalidArgument(`connection string '${uri}' contains '..'; write the folder out in full`);
  if (path.includes("\0")) throw invalidArgument(`connection string '${uri}' holds a NUL character`);
  return path.replace(/\/+$/, "") || "/";
}

/**
 * The connection string as it may be shown: everything but the secret. Whatever the scheme
 * (one Spillway refuses, such as abfss://, is echoed in the refusal and the audit record),
 * all after the first ';' or '?' is masked, but a managed identity's name; a file:// folder has
 * no secret.
 */
export function maskConnectionString(text: string): string {
  const s = text.trim();
  if (/^file:/i.test(s)) return s;
  const at = s.search(/[;?]/);
  if (at < 0) return s;
  if (s[at] === ";" && /^managed_identity=[^;?]*$/i.test(s.slice(at + 1))) return s;
  return `${s.slice(0, at + 1)}${MASK}`;
}
