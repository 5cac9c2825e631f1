export { main } from "./main.js";
export { startSpillway, type RunningSpillway } from "./spillway-app.js";
export { DEPENDENCIES, MODULES, type ModuleName } from "./modules.js";
