import { ErrorCode, SpillwayError } from "@spillway/errors";
import { lineAndColumn } from "./text-position.js";

export interface KqlDiagnostic {
  /** The parser's code (e.g. KS142), or SPW-KQL-UNSUPPORTED for what Spillway does not translate. */
  code: string;
  message: string;
  line: number;
  column: number;
}

export const UNSUPPORTED = "SPW-KQL-UNSUPPORTED";
export const UNKNOWN_COMMAND = "SPW-KQL-UNKNOWN-COMMAND";

/** A query or command Spillway will not run, with where in the text and why (INVALID_ARGUMENT). */
export class KqlError extends SpillwayError {
  constructor(readonly diagnostics: KqlDiagnostic[]) {
    super(ErrorCode.invalidArgument, diagnostics.map((d) => `${d.code} at line ${d.line}, column ${d.column}: ${d.message}`).join("; "));
  }

  get unsupported(): boolean {
    return this.diagnostics.some((d) => d.code === UNSUPPORTED);
  }
}

/** Thrown while reading or translating; the engine turns it into a KqlError with a position. */
export class UnsupportedKql extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

export function kqlErrorAt(text: string, offset: number, code: string, message: string): KqlError {
  return new KqlError([{ code, message, ...lineAndColumn(text, offset) }]);
}
