export * from "./column-types.js";
export * from "./names.js";
export * from "./timespan.js";
export * from "./cursor-ticks.js";
export * from "./path-format.js";
export * from "./partitions.js";
