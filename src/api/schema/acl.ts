/**
 * The ACL routes' request and response shapes: policies and their rules, tokens (the secret
 * appears only in the answer to the request that created it), certificate bindings, whoami.
 */
import { Type, type Static } from "@sinclair/typebox";

/**
 * One rule: `{resource, access}`, plus `prefix` for kv (a key prefix, "" for every key) and
 * `nodeId` for node. Resources and accesses: kv read|write, task submit|read|cancel, vm
 * manage|read, worker manage|read, cluster operator|read, acl manage|read, node report, lease write|read.
 */
export const AclRuleJson = Type.Object(
  {
    resource: Type.Union(
      ["kv", "task", "vm", "worker", "cluster", "acl", "node", "lease"].map((r) => Type.Literal(r)),
    ),
    access: Type.String({ maxLength: 16 }),
    prefix: Type.Optional(Type.String({ maxLength: 4096 })),
    nodeId: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
  },
  { additionalProperties: false },
);
/** One rule. */
export type AclRuleJson = Static<typeof AclRuleJson>;

const NameString = Type.String({ minLength: 1, maxLength: 128 });
const Description = Type.String({ maxLength: 512 });
const PolicyNames = Type.Array(NameString, { maxItems: 32 });

/** A policy. */
export const PolicyJson = Type.Object({
  name: Type.String(),
  description: Type.String(),
  rules: Type.Array(AclRuleJson),
});
/** A policy. */
export type PolicyJson = Static<typeof PolicyJson>;

/** PUT /v1/acl/policies/{name}: create or replace. */
export const PutPolicyBody = Type.Object(
  { description: Type.Optional(Description), rules: Type.Array(AclRuleJson, { maxItems: 256 }) },
  { additionalProperties: false },
);
/** PUT /v1/acl/policies/{name} body. */
export type PutPolicyBody = Static<typeof PutPolicyBody>;

/** A policy name in the path. */
export const PolicyParams = Type.Object({ name: NameString });
/** GET /v1/acl/policies. */
export const PoliciesResponse = Type.Object({ policies: Type.Array(PolicyJson) });

/** A token, never with its secret. */
export const TokenJson = Type.Object({
  accessorId: Type.String(),
  name: Type.String(),
  description: Type.String(),
  policies: Type.Array(Type.String()),
  management: Type.Boolean(),
  createdAtMs: Type.Integer(),
  expiresAtMs: Type.Union([Type.Integer(), Type.Null()]),
});
/** A token. */
export type TokenJson = Static<typeof TokenJson>;

/** POST /v1/acl/tokens. */
export const CreateTokenBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 128 })),
    description: Type.Optional(Description),
    policies: Type.Optional(PolicyNames),
    management: Type.Optional(Type.Boolean()),
    ttlMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 24 * 3600 * 1000 })),
  },
  { additionalProperties: false },
);
/** POST /v1/acl/tokens body. */
export type CreateTokenBody = Static<typeof CreateTokenBody>;

/** A new token and its secret: the only time the secret is shown. */
export const CreatedTokenResponse = Type.Object({
  token: TokenJson,
  secret: Type.String({ description: "the bearer secret; shown once, store it now" }),
});
/** A token accessor in the path. */
export const TokenParams = Type.Object({
  accessorId: Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9-]+$" }),
});
/** GET /v1/acl/tokens. */
export const TokensResponse = Type.Object({ tokens: Type.Array(TokenJson) });

/** A certificate binding. */
export const CertBindingJson = Type.Object({
  commonName: Type.String(),
  description: Type.String(),
  policies: Type.Array(Type.String()),
});
/** PUT /v1/acl/cert-bindings/{commonName}. */
export const PutCertBindingBody = Type.Object(
  { description: Type.Optional(Description), policies: PolicyNames },
  { additionalProperties: false },
);
/** PUT /v1/acl/cert-bindings/{commonName} body. */
export type PutCertBindingBody = Static<typeof PutCertBindingBody>;
/** A certificate common name in the path (URL-encoded). */
export const CertBindingParams = Type.Object({
  commonName: Type.String({ minLength: 1, maxLength: 256 }),
});
/** GET /v1/acl/cert-bindings. */
export const CertBindingsResponse = Type.Object({ bindings: Type.Array(CertBindingJson) });

/** A deletion. */
export const AclDeletedResponse = Type.Object({ deleted: Type.Literal(true) });

/** GET /v1/acl/whoami: who the API takes the caller for, and what it may do. */
export const WhoAmIResponse = Type.Object({
  kind: Type.String({ description: "token, node, certificate or anonymous (insecure mode)" }),
  accessorId: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  nodeId: Type.Optional(Type.Integer()),
  commonName: Type.Optional(Type.String()),
  management: Type.Boolean({ description: "may do everything" }),
  policies: Type.Array(Type.String()),
  rules: Type.Array(Type.String(), { description: "the rules in text form, e.g. kv:read:app/" }),
});
/** GET /v1/acl/whoami. */
export type WhoAmIResponse = Static<typeof WhoAmIResponse>;
