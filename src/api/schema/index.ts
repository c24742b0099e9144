/**
 * The API's wire schema: what the server validates and documents, and all the client SDK may
 * import from the API layer.
 */
export * from "./common.js";
export * from "./values.js";
export * from "./kv.js";
export * from "./cluster.js";
export * from "./orchestrator.js";
export * from "./acl.js";
export * from "./coord.js";
export * from "./operator.js";
