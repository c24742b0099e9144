/**
 * The key-value routes' request and response shapes. Keys travel URL-encoded in the path
 * (`/v1/kv/{key}`; encode `/` as `%2F`); values as described in `values.ts`.
 */
import { Type, type Static } from "@sinclair/typebox";
import { Consistency, PositiveIntegerString } from "./common.js";

/** A key in the path. */
export const KeyParams = Type.Object({ key: Type.String({ minLength: 1 }) });
/** Path parameters of the kv routes. */
export type KeyParams = Static<typeof KeyParams>;

/** A value in a request: exactly one of `value` (UTF-8 text) and `valueBase64` (bytes). */
const ValueFields = {
  value: Type.Optional(Type.String({ description: "the value as UTF-8 text" })),
  valueBase64: Type.Optional(Type.String({ description: "the value as standard base64" })),
};

/** A key with its value and revisions. `value` is present when the bytes are valid UTF-8. */
export const KvEntryJson = Type.Object({
  key: Type.String(),
  value: Type.Optional(Type.String()),
  valueBase64: Type.String(),
  createRevision: Type.Integer(),
  modRevision: Type.Integer(),
  version: Type.Integer(),
});
/** A key with its value and revisions, as JSON. */
export type KvEntryJson = Static<typeof KvEntryJson>;

/** Query string of reads. */
export const ReadQuery = Type.Object({ consistency: Type.Optional(Consistency) });
/** Query string of reads. */
export type ReadQuery = Static<typeof ReadQuery>;

/** GET /v1/kv/{key}: the entry (404 NOT_FOUND if the key does not exist). */
export const GetResponse = Type.Object({
  revision: Type.Integer({ description: "the store revision the read saw" }),
  entry: KvEntryJson,
});
/** GET /v1/kv/{key} response. */
export type GetResponse = Static<typeof GetResponse>;

/** PUT /v1/kv/{key} body. */
export const PutBody = Type.Object(
  {
    ...ValueFields,
    returnPrevious: Type.Optional(Type.Boolean({ description: "return the replaced entry" })),
    lease: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: "attach the key to this lease (without it, the put detaches the key)",
      }),
    ),
  },
  { additionalProperties: false },
);
/** PUT /v1/kv/{key} body. */
export type PutBody = Static<typeof PutBody>;

/** PUT /v1/kv/{key} response. */
export const PutResponse = Type.Object({
  revision: Type.Integer({ description: "the store revision of this write" }),
  previous: Type.Optional(KvEntryJson),
});
/** PUT /v1/kv/{key} response. */
export type PutResponse = Static<typeof PutResponse>;

/** DELETE /v1/kv/{key} query string. */
export const DeleteQuery = Type.Object({
  returnPrevious: Type.Optional(Type.Union([Type.Literal("true"), Type.Literal("false")])),
});
/** DELETE /v1/kv/{key} query string. */
export type DeleteQuery = Static<typeof DeleteQuery>;

/** DELETE /v1/kv/{key} response: `deleted` is false when the key did not exist. */
export const DeleteResponse = Type.Object({
  deleted: Type.Boolean(),
  revision: Type.Integer(),
  previous: Type.Optional(KvEntryJson),
});
/** DELETE /v1/kv/{key} response. */
export type DeleteResponse = Static<typeof DeleteResponse>;

/** What a compare-and-set expects: exactly one of the fields. */
export const CasExpectation = Type.Object(
  {
    absent: Type.Optional(Type.Literal(true, { description: "the key does not exist" })),
    modRevision: Type.Optional(
      Type.Integer({ minimum: 1, description: "the key was last written at this revision" }),
    ),
    ...ValueFields,
  },
  { additionalProperties: false },
);
/** What a compare-and-set expects. */
export type CasExpectation = Static<typeof CasExpectation>;

/** POST /v1/kv/{key}/cas body. */
export const CasBody = Type.Object(
  { expected: CasExpectation, ...ValueFields },
  { additionalProperties: false },
);
/** POST /v1/kv/{key}/cas body. */
export type CasBody = Static<typeof CasBody>;

/**
 * POST /v1/kv/{key}/cas response. A failed comparison is a result (200, `succeeded: false`,
 * with the key's `current` entry or null), not an error, as in etcd's transactions.
 */
export const CasResponse = Type.Object({
  succeeded: Type.Boolean(),
  revision: Type.Integer(),
  current: Type.Optional(Type.Union([KvEntryJson, Type.Null()])),
});
/** POST /v1/kv/{key}/cas response. */
export type CasResponse = Static<typeof CasResponse>;

/** GET /v1/kv query string. */
export const ListQuery = Type.Object({
  prefix: Type.Optional(Type.String()),
  start: Type.Optional(Type.String({ description: "first key (inclusive): a nextStart" })),
  end: Type.Optional(Type.String({ description: "last key (exclusive)" })),
  limit: Type.Optional(PositiveIntegerString),
  consistency: Type.Optional(Consistency),
});
/** GET /v1/kv query string. */
export type ListQuery = Static<typeof ListQuery>;

/** GET /v1/kv response: one page in key order. */
export const ListResponse = Type.Object({
  entries: Type.Array(KvEntryJson),
  revision: Type.Integer(),
  more: Type.Boolean(),
  nextStart: Type.Optional(Type.String()),
});
/** GET /v1/kv response. */
export type ListResponse = Static<typeof ListResponse>;
