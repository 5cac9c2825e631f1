export { createConsoleModule, type ConsoleModuleDeps } from "./console-module.js";
