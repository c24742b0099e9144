/** The TypeScript SDK of Blixard. */
export { BlixardClient, MAX_BACKOFF_MS, type BlixardClientOptions } from "./client.js";
export { errorFromResponse } from "./errors.js";
export type * from "./types.js";
