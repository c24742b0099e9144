/**
 * A route as data: its method, URL, schemas and handler. The server registers it with the HTTP
 * framework (which validates every request against the schemas) and the OpenAPI generator
 * documents it from the very same schemas, so the two cannot drift.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ClientSession } from "../statemachine/session/envelope.js";
import type { CallOptions } from "./service.js";

/** What a handler sees of a validated request. */
export interface RequestContext {
  readonly params: Record<string, string>;
  readonly query: Record<string, string | undefined>;
  readonly body: unknown;
  /** Cancellation (the client went away) and the request's deadline. */
  readonly call: CallOptions;
  /** The client session from the session headers, when given. */
  readonly session: ClientSession | undefined;
}

/** A response that is not JSON (Prometheus text). */
export class RawBody {
  /** @param contentType the response's media type. */
  constructor(
    readonly contentType: string,
    readonly text: string,
  ) {}
}

/** One route. */
export interface RouteSpec {
  readonly method: "GET" | "PUT" | "POST" | "DELETE";
  /** Fastify syntax: `/v1/kv/:key`. */
  readonly url: string;
  /** One line for the OpenAPI document. */
  readonly summary: string;
  readonly tag: string;
  readonly params?: TSchema;
  readonly querystring?: TSchema;
  readonly body?: TSchema;
  /** The 200 response's JSON schema (undefined for non-JSON responses). */
  readonly response?: TSchema;
  /** Accepts the session headers (a write that can be exactly-once). */
  readonly sessioned?: boolean;
  /** On NOT_LEADER with a known leader address, forward the request to the leader. */
  readonly forwardToLeader?: boolean;
  /** The error codes worth documenting beyond the common ones. */
  readonly errors?: readonly string[];
  /** Produces the 200 body (JSON-serializable or a {@link RawBody}); throws typed errors. */
  readonly handler: (context: RequestContext) => Promise<unknown> | unknown;
}
