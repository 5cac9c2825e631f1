import { realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { invalidArgument } from "@spillway/errors";

/** Where `file://` targets may point (SPEC §7): under an operator's roots, clear of the data dir. */
export interface FileTargetPolicy {
  /** Absolute folders a target may be inside; none means no `file://` target is allowed. */
  roots: readonly string[];
  /** Spillway's own state: a target must neither be inside it nor contain it. */
  dataDir: string;
}

/**
 * The real path `path` leads to, once symlinks are followed, when the policy allows writing
 * there; otherwise an invalidArgument that says what is allowed. A path that does not exist
 * yet is judged by its deepest existing ancestor, so a symlink anywhere on the way counts.
 */
export async function confineFileTarget(path: string, policy: FileTargetPolicy): Promise<string> {
  if (!isAbsolute(path)) throw invalidArgument(`file target '${path}' is not an absolute path`);
  // Refused, not normalized: '..' after a symlink means something else to the OS than to resolve().
  if (path.split("/").includes("..")) throw invalidArgument(`file target '${path}' contains '..'; write the folder out in full`);
  const real = await realPathAllowingMissing(resolve(path));
  const shown = real === resolve(path) ? `'${path}'` : `'${path}' (which resolves to '${real}')`;

  const dataDir = await realPathAllowingMissing(resolve(policy.dataDir));
  if (isInside(real, dataDir)) throw invalidArgument(`file target ${shown} is inside Spillway's data directory; choose a folder outside it${allowedRoots(policy)}`);
  // Runs remove files under their target: a target holding the data dir could lose Spillway's state.
  if (isInside(dataDir, real)) throw invalidArgument(`file target ${shown} contains Spillway's data directory; choose a folder beside it, not above it${allowedRoots(policy)}`);

  const roots = await Promise.all(policy.roots.map((root) => realPathAllowingMissing(resolve(root))));
  if (roots.length === 0) {
    throw invalidArgument(`file target ${shown} is not allowed: no folders are configured for file:// targets; set SPILLWAY_FILE_TARGET_ROOTS`);
  }
  if (!roots.some((root) => isInside(real, root))) {
    throw invalidArgument(`file target ${shown} is outside the folders allowed for file:// targets: ${policy.roots.join(", ")}`);
  }
  return real;
}

/** `child` is `parent` or below it, compared whole segment by segment (/tmp/lakeX is not in /tmp/lake). */
function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith("/") ? parent : `${parent}/`);
}

/** realpath of the deepest ancestor that exists, with the missing rest appended as written. */
async function realPathAllowingMissing(path: string): Promise<string> {
  const missing: string[] = [];
  let candidate = path;
  for (;;) {
    try {
      return join(await realpath(candidate), ...missing.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw invalidArgument(`path '${path}' runs into a symlink loop at '${candidate}'`);
      // ENOTDIR: a file where a folder should be; EACCES: a folder the process cannot search,
      // so it cannot write through it either. Both are judged by what lies above them.
      if (code !== "ENOENT" && code !== "ENOTDIR" && code !== "EACCES") throw err;
      if (candidate === dirname(candidate)) throw err;
      missing.push(basename(candidate));
      candidate = dirname(candidate);
    }
  }
}

/** Every refusal says where targets may go (SPEC §7). */
export function allowedRoots(policy: FileTargetPolicy): string {
  return policy.roots.length ? ` (allowed: ${policy.roots.join(", ")})` : " (none are allowed: set SPILLWAY_FILE_TARGET_ROOTS)";
}
