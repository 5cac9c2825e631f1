export * from "./principal.js";
export * from "./token-verifier.js";
export * from "./roles.js";
