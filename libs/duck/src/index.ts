export * from "./sql-text.js";
export * from "./serial-connection.js";
export * from "./sandbox.js";
