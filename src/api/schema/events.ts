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

/**
 * A kv entry in a change event: exactly one of `value` (the bytes were valid UTF-8: this is them
 * as text) and `valueBase64` (they were not), unlike a read's entry, which always has
 * `valueBase64` (see `values.ts`).
 */
export const KvEventEntryJson = Type.Union([
  Type.Object({
    key: Type.String(),
    value: Type.String({ description: "the value as UTF-8 text (its bytes are valid UTF-8)" }),
    createRevision: Type.Integer(),
    modRevision: Type.Integer(),
    version: Type.Integer(),
  }),
  Type.Object({
    key: Type.String(),
    valueBase64: Type.String({ description: "the value as standard base64 (not UTF-8 text)" }),
    createRevision: Type.Integer(),
    modRevision: Type.Integer(),
    version: Type.Integer(),
  }),
]);
/** A kv entry in a change event, as JSON. */
export type KvEventEntryJson = Static<typeof KvEventEntryJson>;

/** A kv put or delete in a change message. */
const KvEventJson = Type.Union([
  Type.Object({
    topic: Type.Literal("kv"),
    type: Type.Literal("put"),
    key: Type.String(),
    kv: KvEventEntryJson,
  }),
  Type.Object({
    topic: Type.Literal("kv"),
    type: Type.Literal("delete"),
    key: Type.String(),
    kv: Type.Object({ key: Type.String(), modRevision: Type.Integer() }),
  }),
]);

/** The data of an event stream's `change` message: one raft entry's events of the topics. */
export const EventsChangeData = Type.Object({
  index: Type.Integer({ description: "the raft index of the entry: resume from it + 1" }),
  revision: Type.Integer({ description: "the kv revision after the entry" }),
  events: Type.Array(
    Type.Union([
      KvEventJson,
      Type.Object(
        {
          topic: Type.Union([
            Type.Literal("task"),
            Type.Literal("vm"),
            Type.Literal("worker"),
            Type.Literal("cluster"),
          ]),
          type: Type.String({ description: "updated, removed, settings or acl" }),
          key: Type.String({ description: "the task id, VM name or worker node id" }),
        },
        { description: "with `task`, `vm`, `worker`, `settings` or `command` as the entity" },
      ),
    ]),
  ),
});
/** The data of an event stream's `change` message. */
export type EventsChangeData = Static<typeof EventsChangeData>;

/** The data of a kv watch's `change` message (see `events/sse-stream.ts` for the framing). */
export const KvWatchChangeData = Type.Object({
  index: Type.Integer({ description: "the raft index of the last entry this message covers" }),
  revision: Type.Integer({ description: "the kv revision after that entry: resume from it + 1" }),
  events: Type.Array(KvEventJson),
});
/** The data of a kv watch's `change` message. */
export type KvWatchChangeData = Static<typeof KvWatchChangeData>;
