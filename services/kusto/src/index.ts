export { createKustoModule, type KustoModuleDeps } from "./kusto-module.js";
export { kustoAccess } from "./access.js";
export type { CallAdmitter } from "./peer-clients.js";
