import { invalidArgument } from "@spillway/errors";

/** The languages a query may be written in (QueryService/Query, continuous exports). */
export type QueryLanguage = "sql" | "kql";

/**
 * The language a request names; empty means SQL, as before KQL was accepted. `where` names
 * what the query belongs to in the refusal (e.g. "continuous export 'E'").
 */
export function queryLanguage(value: string, where?: string): QueryLanguage {
  const language = (value || "sql").toLowerCase();
  if (language !== "sql" && language !== "kql") {
    throw invalidArgument(`${where ? `${where}: ` : ""}queryLanguage '${value}' is not supported; use sql or kql`);
  }
  return language;
}
