export * from "./start-telemetry.js";
export * from "./metrics-endpoint.js";
export * from "./resource-meter.js";
