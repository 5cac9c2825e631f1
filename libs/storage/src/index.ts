export * from "./connection-string.js";
export * from "./storage-target.js";
