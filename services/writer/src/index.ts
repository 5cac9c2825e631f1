export { createWriterModule } from "./writer-module.js";
