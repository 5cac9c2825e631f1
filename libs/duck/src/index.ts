export * from "./sql-text.js";
export * from "./serial-connection.js";
export * from "./sandbox.js";
export * from "./sql-guard.js";
export * from "./table-binding.js";
export * from "./query-description.js";
export * from "./artifact-encoding.js";
export * from "./query-shape.js";
