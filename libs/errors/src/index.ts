export * from "./spillway-error.js";
export * from "./redact-secrets.js";
