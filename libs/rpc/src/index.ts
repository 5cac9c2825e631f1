export * from "./service-definition.js";
export * from "./service-impl.js";
export * from "./rpc-server.js";
export * from "./grpc-client.js";
export * from "./local-client.js";
export * from "./status-mapping.js";
export * from "./trace-context.js";
export * from "./retry.js";
