export { closeSharedKqlEngine, sharedKqlEngine } from "./shared-engine.js";
export { createKqlEngine, translate, translateCommandPipe, type KqlAnalysis, type KqlEngine, type TranslatedQuery } from "./kql-engine.js";
export type { WarmUp } from "./kusto-language-host.js";
export { KqlError, UNKNOWN_COMMAND, UNSUPPORTED, type KqlDiagnostic } from "./kql-error.js";
export { kqlSchemaOf, type DescribedTable, type KqlColumn, type KqlSchema, type KqlTable } from "./kql-schema.js";
export { COMMAND_RESULT } from "./command-tree.js";
export type * from "./command-tree.js";
export type * from "./query-tree.js";
export { kustoJsonValue, renderColumnSql, type KustoJson } from "./kusto-json-value.js";
