import { invalidArgument } from "@spillway/errors";

/** Who made a request, as a verified bearer token says. */
export interface Principal {
  /** Written as Kusto writes principals: `aaduser=<value>` or `aadapp=<value>`. */
  fqn: string;
  kind: "user" | "app";
  displayName: string;
  /** The token's `oid` claim, or "" when it has none. */
  objectId: string;
}

export const PRINCIPAL_PREFIX = { user: "aaduser=", app: "aadapp=" } as const;

const MAX_PRINCIPAL_VALUE_LENGTH = 256;
const WHITESPACE_OR_CONTROL = /[\s\p{Cc}\p{Cf}]/u;
const ACCEPTED_FORMS = "'aaduser=<user id>' or 'aadapp=<application id>'";

/**
 * Why `value` cannot follow a principal prefix, or undefined when it can. Grants and token
 * claims go through the same rule, so a principal a token yields can always be granted.
 */
export function principalValueProblem(value: string): string | undefined {
  if (value.length === 0) return "is empty";
  if (value.length > MAX_PRINCIPAL_VALUE_LENGTH) return `is longer than ${MAX_PRINCIPAL_VALUE_LENGTH} characters`;
  if (WHITESPACE_OR_CONTROL.test(value)) return "contains whitespace or control characters";
  return undefined;
}

/** Validates a principal a caller names in a grant and lower-cases its prefix. */
export function parsePrincipalFqn(text: string): string {
  const separator = text.indexOf("=");
  const prefix = separator < 0 ? "" : text.slice(0, separator + 1).toLowerCase();
  if (prefix !== PRINCIPAL_PREFIX.user && prefix !== PRINCIPAL_PREFIX.app) {
    throw invalidArgument(`invalid principal: use ${ACCEPTED_FORMS}`);
  }
  const value = text.slice(separator + 1);
  const problem = principalValueProblem(value);
  if (problem) throw invalidArgument(`invalid principal: the value after '${prefix}' ${problem}; use ${ACCEPTED_FORMS}`);
  return prefix + value;
}
