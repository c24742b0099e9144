/**
 * The API server's default limits, apart from the server so that the CLI can show them in its
 * help without loading Fastify and the route table (see `cli/commands/node.ts`).
 */

/** The default request body limit: 2 MiB (a 1 MiB value in base64 plus room). */
export const DEFAULT_BODY_LIMIT_BYTES = 2 * 1024 * 1024;
/** The default deadline of one request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** How many times a request may be forwarded between nodes. */
export const MAX_FORWARD_HOPS = 1;
/** The default cap of open connections per API listener. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
