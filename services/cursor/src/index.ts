export { createCursorModule } from "./cursor-module.js";
