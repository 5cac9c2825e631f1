export * from "./connection-string.js";
export * from "./storage-target.js";
export * from "./file-target-policy.js";
export * from "./spool-store.js";
export * from "./extent-store.js";
export * from "./remote-extent-store.js";
export * from "./artifact-names.js";
