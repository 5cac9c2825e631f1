export { createQueryModule } from "./query-module.js";
