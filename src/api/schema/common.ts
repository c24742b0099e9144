/**
 * Wire shapes shared by every route: the error body, the request headers that carry a client
 * session, forwarding and deadlines, and read consistency. Used by the server and by the client
 * SDK (which may import only this folder and `src/common`).
 */
import { Type, type Static } from "@sinclair/typebox";

/** Every error response: `{code, message}` with the HTTP status of `code` (see `ERROR_CODES`). */
export const ErrorBody = Type.Object({
  code: Type.String({ description: "a stable Blixard error code, e.g. NOT_LEADER" }),
  message: Type.String({ description: "what went wrong and what to do, for people" }),
  leaderHint: Type.Optional(
    Type.Object(
      {
        id: Type.Integer({ minimum: 1 }),
        address: Type.Optional(Type.String({ description: "the leader's API base URL" })),
      },
      { description: "NOT_LEADER only: where the leader is, when known" },
    ),
  ),
});
/** An error response body. */
export type ErrorBody = Static<typeof ErrorBody>;

/**
 * Request headers. A write carrying the session headers applies exactly once: resending it with
 * the same client id and sequence returns the first result (Raft thesis §6.3).
 */
export const HEADERS = {
  /** The session's client id: random, unique, never reused; 1..128 UTF-8 bytes. */
  clientId: "blixard-client-id",
  /** The command's sequence in the session: 1, 2, 3, …; a retry resends the same one. */
  sequence: "blixard-sequence",
  /** The lowest sequence the client has no reply for yet (defaults to the sequence). */
  ackedBelow: "blixard-acked-below",
  /** How many times the request was forwarded between nodes (set by nodes, at most 1). */
  forwardedHops: "blixard-forwarded-hops",
  /** The caller's deadline for this request in ms; the node caps it with its own. */
  timeoutMs: "blixard-timeout-ms",
  /** Response header: the leader's API address, set when a node forwarded the request there. */
  leaderAddress: "blixard-leader-address",
} as const;

/** A positive decimal integer as a header or query string (no leading zeros, no sign). */
export const PositiveIntegerString = Type.String({ pattern: "^[1-9][0-9]{0,15}$" });

/** The session headers, as a schema for validation and for the OpenAPI document. */
export const SessionHeaders = Type.Object({
  [HEADERS.clientId]: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  [HEADERS.sequence]: Type.Optional(PositiveIntegerString),
  [HEADERS.ackedBelow]: Type.Optional(PositiveIntegerString),
  [HEADERS.forwardedHops]: Type.Optional(Type.String({ pattern: "^[0-9]$" })),
  [HEADERS.timeoutMs]: Type.Optional(PositiveIntegerString),
});

/**
 * How fresh a read must be:
 * - `linearizable` (default): reflects every write acknowledged before it (ReadIndex);
 * - `lease`: answered by the leader from its lease when the node runs with
 *   `readOnlyOption: "lease-based"` (otherwise as strong as linearizable); forwarded to the leader;
 * - `stale`: this node's state as it is, possibly behind.
 */
export const Consistency = Type.Union(
  [Type.Literal("linearizable"), Type.Literal("lease"), Type.Literal("stale")],
  { default: "linearizable" },
);
/** A read consistency level. */
export type Consistency = Static<typeof Consistency>;
