export * from "./spillway-config.js";
