/**
 * The coordination routes' request and response shapes: leases, txns and the blocking wait.
 * Values travel as in `values.ts` (`value` UTF-8 text or `valueBase64`).
 */
import { Type, type Static } from "@sinclair/typebox";
import { PositiveIntegerString } from "./common.js";
import { KvEntryJson } from "./kv.js";

const ValueFields = {
  value: Type.Optional(Type.String({ description: "the value as UTF-8 text" })),
  valueBase64: Type.Optional(Type.String({ description: "the value as standard base64" })),
};
const LeaseId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

/** The most lease ids one keep-alive renews. */
const MAX_KEEPALIVE_IDS = 1000;

/** POST /v1/leases body. */
export const GrantBody = Type.Object(
  { ttlMs: Type.Integer({ description: "the lease's TTL, 1000 ms to a day" }) },
  { additionalProperties: false },
);
/** POST /v1/leases body. */
export type GrantBody = Static<typeof GrantBody>;

/** POST /v1/leases response. */
export const GrantResponse = Type.Object({ id: Type.Integer(), ttlMs: Type.Integer() });

/** A lease id in the path. */
export const LeaseParams = Type.Object({ id: PositiveIntegerString });

/** DELETE /v1/leases/{id} response. */
export const RevokeResponse = Type.Object({
  deletedKeys: Type.Integer({ description: "how many keys the lease took with it" }),
});

/** POST /v1/leases/keepalive body. */
export const KeepAliveBody = Type.Object(
  { ids: Type.Array(LeaseId, { minItems: 1, maxItems: MAX_KEEPALIVE_IDS }) },
  { additionalProperties: false },
);
/** POST /v1/leases/keepalive body. */
export type KeepAliveBody = Static<typeof KeepAliveBody>;

/** POST /v1/leases/keepalive response: `ttlMs` -1 means the lease is gone (expired or revoked). */
export const KeepAliveResponse = Type.Object({
  leases: Type.Array(Type.Object({ id: Type.Integer(), ttlMs: Type.Integer() })),
});
/** POST /v1/leases/keepalive response. */
export type KeepAliveResponse = Static<typeof KeepAliveResponse>;

/** GET /v1/leases/{id} query string. */
export const TimeToLiveQuery = Type.Object({
  keys: Type.Optional(Type.Union([Type.Literal("true"), Type.Literal("false")])),
});

/** GET /v1/leases/{id} response. */
export const TimeToLiveResponse = Type.Object({
  id: Type.Integer(),
  ttlMs: Type.Integer(),
  remainingMs: Type.Integer({ description: "what is left on the leader's clock" }),
  keys: Type.Optional(Type.Array(Type.String())),
});

/** One txn condition. `number` for version/createRevision/modRevision/lease, a value for value. */
export const CompareJson = Type.Object(
  {
    key: Type.String({ minLength: 1 }),
    target: Type.Union(
      ["value", "version", "createRevision", "modRevision", "lease"].map((t) => Type.Literal(t)),
    ),
    operator: Type.Union(["equal", "notEqual", "less", "greater"].map((o) => Type.Literal(o))),
    number: Type.Optional(Type.Integer({ minimum: 0 })),
    ...ValueFields,
  },
  { additionalProperties: false },
);
/** One txn condition. */
export type CompareJson = Static<typeof CompareJson>;

/** One txn op. */
export const TxnOpJson = Type.Object(
  {
    op: Type.Union([Type.Literal("get"), Type.Literal("put"), Type.Literal("delete")]),
    key: Type.String({ minLength: 1 }),
    lease: Type.Optional(LeaseId),
    ...ValueFields,
  },
  { additionalProperties: false },
);
/** One txn op. */
export type TxnOpJson = Static<typeof TxnOpJson>;

/** POST /v1/txn body. */
export const TxnBody = Type.Object(
  {
    compare: Type.Array(CompareJson, { maxItems: 64 }),
    success: Type.Array(TxnOpJson, { maxItems: 128 }),
    failure: Type.Optional(Type.Array(TxnOpJson, { maxItems: 128 })),
  },
  { additionalProperties: false },
);
/** POST /v1/txn body. */
export type TxnBody = Static<typeof TxnBody>;

/** One txn op's result: a get's entry (or null), a put's revision, a delete's `deleted`. */
export const TxnOpResultJson = Type.Object({
  op: Type.String(),
  entry: Type.Optional(Type.Union([KvEntryJson, Type.Null()])),
  revision: Type.Optional(Type.Integer()),
  deleted: Type.Optional(Type.Boolean()),
});
/** One txn op's result. */
export type TxnOpResultJson = Static<typeof TxnOpResultJson>;

/** POST /v1/txn response. */
export const TxnResponse = Type.Object({
  succeeded: Type.Boolean(),
  revision: Type.Integer(),
  results: Type.Array(TxnOpResultJson),
});
/** POST /v1/txn response. */
export type TxnResponse = Static<typeof TxnResponse>;

/** GET /v1/wait/{key} query string. */
export const WaitQuery = Type.Object({
  createRevision: Type.String({ pattern: "^[0-9]{1,16}$", description: "0: the key is absent" }),
  waitMs: Type.Optional(PositiveIntegerString),
});

/** GET /v1/wait/{key} response. */
export const WaitResponse = Type.Object({
  createRevision: Type.Integer({ description: "the key's createRevision now, 0 if absent" }),
  changed: Type.Boolean({ description: "false: the wait timed out" }),
  revision: Type.Integer(),
});
/** GET /v1/wait/{key} response. */
export type WaitResponse = Static<typeof WaitResponse>;
