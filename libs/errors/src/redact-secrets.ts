// Secrets reach error messages through connection strings and SDK errors that echo
// request URLs. Every message that leaves a process goes through redactSecrets.

const patterns: Array<[RegExp, string]> = [
  // Kusto-style connection string, whatever its scheme (https, abfss, wasbs, ...): URL;<account
  // key or token>, all of it to the next space or quote (a token's dots and dashes included).
  [/([a-z][a-z0-9+.-]*:\/\/[^\s;"']+);(?!managed_identity=)[^\s"',;)\]]{8,}/gi, "$1;*******"],
  // A JWT wherever it appears (a token pasted into a connection string, a header echoed).
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, "*******"],
  // SAS tokens: the signature and the whole query string after the URL path.
  [/([?&]sig=)[^&\s"']+/gi, "$1*******"],
  [/(AccountKey=)[^;\s"']+/gi, "$1*******"],
  [/(SharedAccessSignature=|SharedAccessKey=|Password=|Pwd=)[^;\s"']+/gi, "$1*******"],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, "$1*******"],
  // A URL's password, whatever its scheme: postgres://user:password@host (SPILLWAY_METADATA_URL).
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s"']+:)[^@\s"'/]+@/gi, "$1*******@"],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, replacement] of patterns) out = out.replace(re, replacement);
  return out;
}
