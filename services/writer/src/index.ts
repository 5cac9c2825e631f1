export { createWriterModule } from "./writer-module.js";
export { writerAccess } from "./access.js";
