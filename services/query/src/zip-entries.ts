import yauzl from "yauzl";
import { ErrorCode, invalidArgument, SpillwayError } from "@spillway/errors";
import { isGzip, keepWithin, takeFile, type IngestBudget } from "./ingest-budget.js";

/**
 * Kusto's `zipPattern`: a regular expression over the paths of an archive's files. Kusto's
 * own examples write a glob (`*.csv`), which is no regular expression: one that does not
 * compile as a regular expression but has `*` or `?` is read as a glob over the whole path.
 */
export function zipEntryMatcher(pattern: string): (path: string) => boolean {
  if (!pattern) return () => true;
  try {
    const re = new RegExp(pattern);
    return (path) => re.test(path);
  } catch (err) {
    if (!/[*?]/.test(pattern)) throw invalidArgument(`zipPattern '${pattern}' is not a regular expression: ${(err as Error).message}`);
    const glob = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*").replaceAll("?", ".")}$`);
    return (path) => glob.test(path);
  }
}

/**
 * Extracts the files of the zip archive at `archive` whose paths `matches` keeps, each to the
 * local file `fileFor(path)` gives (never a path taken from the archive), a `.gz` one
 * unpacked, within `budget`. Says which paths it extracted, in the archive's order.
 */
export async function extractZipEntries(archive: string, shown: string, matches: (path: string) => boolean, fileFor: (path: string) => string, budget: IngestBudget): Promise<string[]> {
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.open(archive, { lazyEntries: true, autoClose: false }, (err, z) => (err ? reject(err) : resolve(z))));
  } catch (err) {
    throw unreadable(shown, err);
  }
  // A late error (closing the file after the last entry) must not go unheard as an 'error' event.
  zip.on("error", () => undefined);
  const extracted: string[] = [];
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
        const onEntry = (e: yauzl.Entry) => (cleanup(), resolve(e));
        const onEnd = () => (cleanup(), resolve(undefined));
        const onError = (e: Error) => (cleanup(), reject(e));
        const cleanup = () => {
          zip.off("entry", onEntry).off("end", onEnd).off("error", onError);
        };
        zip.on("entry", onEntry).on("end", onEnd).on("error", onError);
        zip.readEntry();
      });
      if (!entry) break;
      if (entry.fileName.endsWith("/") || !matches(entry.fileName)) continue;
      takeFile(budget);
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))));
      await keepWithin(stream, fileFor(entry.fileName), `${entry.fileName}' in '${shown}`, budget, { gunzip: isGzip(entry.fileName), readError: (err) => unreadable(shown, err) });
      extracted.push(entry.fileName);
    }
  } catch (err) {
    if (err instanceof SpillwayError) throw err;
    throw unreadable(shown, err);
  } finally {
    zip.close();
  }
  return extracted;
}

/** The archive's fault, unless this machine's own trouble (a full disk, too many open files) got in the way. */
const unreadable = (shown: string, err: unknown) =>
  (err as NodeJS.ErrnoException).syscall
    ? new SpillwayError(ErrorCode.unavailable, `could not unpack '${shown}' here: ${(err as NodeJS.ErrnoException).code}; try again`)
    : invalidArgument(`'${shown}' is not a zip archive that can be read: ${(err as Error).message}`);
