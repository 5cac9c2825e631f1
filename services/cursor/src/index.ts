export { createCursorModule, type CursorModuleOptions } from "./cursor-module.js";
export { cursorAccess } from "./access.js";
