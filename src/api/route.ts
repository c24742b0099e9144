/**
 * A route as data: its method, URL, schemas and handler. The server registers it with the HTTP
 * framework (which validates every request against the schemas) and the OpenAPI generator
 * documents it from the very same schemas, so the two cannot drift.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ServerResponse } from "node:http";
import type { Permission } from "../statemachine/acl/policy.js";
import type { ClientSession } from "../statemachine/session/envelope.js";
import type { Identity } from "./auth/identity.js";
import type { CallOptions } from "./service.js";

/** What a handler sees of a validated request. */
export interface RequestContext {
  readonly params: Record<string, string>;
  readonly query: Record<string, string | undefined>;
  readonly body: unknown;
  /** The request headers (lower-case names), when the route needs more than the session's. */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
  /** Cancellation (the client went away) and the request's deadline. */
  readonly call: CallOptions;
  /** The client session from the session headers, when given. */
  readonly session: ClientSession | undefined;
  /** Who made the request (undefined on open routes called without a credential). */
  readonly identity: Identity | undefined;
  /**
   * Checks one more permission of the caller (a route that needs several, like an event stream
   * of several topics); throws `PermissionDeniedError`. Set by the server.
   */
  readonly authorize?: (permission: Permission) => void;
}

/**
 * What a request may carry before it is validated, for computing its permission: path
 * parameters as strings, the query and the parsed but unchecked JSON body. A permission function
 * must accept anything here and return a permission at least as strict as the request needs.
 */
export interface UncheckedRequest {
  readonly params: Readonly<Record<string, string | undefined>>;
  readonly query: Readonly<Record<string, unknown>>;
  readonly body: unknown;
}

/**
 * What a route requires of its caller: `open` (no credential: health, readiness, metrics, the
 * OpenAPI document, the one-time bootstrap), `authenticated` (any identity: whoami), or a
 * permission, fixed or computed from the request (a kv key, a report's node).
 */
export type RoutePermission =
  "open" | "authenticated" | Permission | ((request: UncheckedRequest) => Permission);

/** A response that is not JSON (Prometheus text). */
export class RawBody {
  /** @param contentType the response's media type. */
  constructor(
    readonly contentType: string,
    readonly text: string,
  ) {}
}

/**
 * A long-lived streaming response (an event stream): the server hands the raw response to
 * `start`, which writes the status, headers and body itself and ends it when it is done.
 */
export class StreamBody {
  constructor(readonly start: (response: ServerResponse) => void) {}
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
  /**
   * A Server-Sent Events route (its handler returns a {@link StreamBody}): the JSON schema of the
   * data of its `change` messages, for the OpenAPI document.
   */
  readonly changeData?: TSchema;
  /** Accepts the session headers (a write that can be exactly-once). */
  readonly sessioned?: boolean;
  /** On NOT_LEADER with a known leader address, forward the request to the leader. */
  readonly forwardToLeader?: boolean;
  /** What the caller must hold; checked before the body is validated and before the handler. */
  readonly permission: RoutePermission;
  /** The error codes worth documenting beyond the common ones. */
  readonly errors?: readonly string[];
  /**
   * `"refusals"`: only refused calls (4xx/5xx) go to the audit log. For high-rate calls that
   * change nothing durable (agents' heartbeats: hundreds a second with a thousand agents would
   * push every other line out of the rotated files within minutes). Default: every call of a
   * mutating method.
   */
  readonly audit?: "refusals";
  /** Produces the 200 body (JSON-serializable, a {@link RawBody} or a {@link StreamBody}); throws typed errors. */
  readonly handler: (context: RequestContext) => Promise<unknown> | unknown;
}
