import { invalidArgument } from "@spillway/errors";

const NAME = /^[A-Za-z0-9_.-]{1,256}$/;

/** Entity names: 1–256 letters, digits, `_`, `-`, `.` (SPEC §1). */
export function validateName(kind: string, name: string): string {
  if (!name) throw invalidArgument(`${kind} name is required`);
  // Names become folder names (manifests, extents): one of only dots would climb out of them.
  if (!NAME.test(name) || /^\.+$/.test(name)) {
    throw invalidArgument(
      `invalid ${kind} name '${name.slice(0, 300)}': use 1–256 letters, digits, '_', '-' or '.'`,
    );
  }
  return name;
}

export const DEFAULT_DATABASE = "default";

export function databaseName(name: string | undefined): string {
  return validateName("database", name || DEFAULT_DATABASE);
}
