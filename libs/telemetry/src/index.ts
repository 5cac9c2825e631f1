export * from "./start-telemetry.js";
export * from "./metrics-endpoint.js";
