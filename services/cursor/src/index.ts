export { createCursorModule, type CursorModuleOptions } from "./cursor-module.js";
