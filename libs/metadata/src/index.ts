export * from "./metadata-db.js";
export * from "./duck-metadata-db.js";
export * from "./postgres-metadata-db.js";
export * from "./open-metadata-db.js";
export * from "./store-places.js";
export * from "./cluster-key.js";
