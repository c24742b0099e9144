/** The streaming routes' query strings (their responses are Server-Sent Events, not JSON). */
import { Type, type Static } from "@sinclair/typebox";
import { PositiveIntegerString } from "./common.js";

/** GET /v1/events query. */
export const EventsQuery = Type.Object(
  {
    topic: Type.Optional(
      Type.String({
        pattern: "^(kv|task|vm|worker|cluster)(,(kv|task|vm|worker|cluster))*$",
        description: "comma-separated topics (default: all; each needs its read permission)",
      }),
    ),
    from: Type.Optional(
      Type.Unsafe<string>({
        ...PositiveIntegerString,
        description: "the first raft index to send (default: from now; or Last-Event-ID + 1)",
      }),
    ),
    key: Type.Optional(
      Type.String({ description: "only events of this key, task id, VM name or node id" }),
    ),
  },
  { additionalProperties: false },
);
/** GET /v1/events query. */
export type EventsQuery = Static<typeof EventsQuery>;

/** GET /v1/kv/watch query. */
export const KvWatchQuery = Type.Object(
  {
    key: Type.Optional(Type.String({ minLength: 1, description: "watch this key" })),
    prefix: Type.Optional(
      Type.String({ description: "watch the keys with this prefix (default: every key)" }),
    ),
    fromRevision: Type.Optional(
      Type.Unsafe<string>({
        ...PositiveIntegerString,
        description: "the first revision to send (default: from now; or Last-Event-ID + 1)",
      }),
    ),
  },
  { additionalProperties: false },
);
/** GET /v1/kv/watch query. */
export type KvWatchQuery = Static<typeof KvWatchQuery>;
