export { createQueryModule } from "./query-module.js";
export { queryAccess } from "./access.js";
