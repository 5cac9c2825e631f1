export * from "./column-types.js";
export * from "./names.js";
export * from "./timespan.js";
export * from "./cursor-ticks.js";
