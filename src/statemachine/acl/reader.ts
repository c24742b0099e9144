/**
 * Strict readers of the ACL namespace's values (commands, results, entities): every field
 * present with its type and range, no unknown field, each value rebuilt with its keys in one
 * fixed order and frozen, so equal values encode to equal bytes. `InvalidArgumentError` for a
 * wrong shape, `TooLargeError` for a string or list over its limit.
 */
import { InvalidArgumentError } from "../../common/index.js";
import { MAX_KEY_BYTES } from "../kv/limits.js";
import {
  FieldReader,
  checkString,
  type FieldPath,
  type StringRules,
} from "../orchestrator/field-reader.js";
import {
  MAX_ACL_DESCRIPTION_BYTES,
  MAX_ACL_NAME_BYTES,
  MAX_COMMON_NAME_BYTES,
  MAX_POLICIES_PER_HOLDER,
  MAX_RULES_PER_POLICY,
} from "./limits.js";
import type {
  AclCertBinding,
  AclCommand,
  AclPolicy,
  AclResult,
  AclRule,
  AclToken,
} from "./types.js";

/** Policy names: letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const POLICY_NAME_RULES: StringRules = {
  maxBytes: MAX_ACL_NAME_BYTES,
  nonEmpty: true,
  pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
  patternHint: "letters, digits, '.', '_' and '-', starting with a letter or digit",
};
/** Accessor ids: what `crypto.randomUUID()` makes, or any short id of the same alphabet. */
export const ACCESSOR_ID_RULES: StringRules = {
  maxBytes: 64,
  nonEmpty: true,
  pattern: /^[A-Za-z0-9-]+$/,
  patternHint: "letters, digits and '-'",
};
const SECRET_HASH_RULES: StringRules = {
  maxBytes: 64,
  nonEmpty: true,
  pattern: /^[0-9a-f]{64}$/,
  patternHint: "64 lower-case hex digits (a SHA-256)",
};
const TEXT_RULES: StringRules = { maxBytes: MAX_ACL_NAME_BYTES, noNul: true };
const DESCRIPTION_RULES: StringRules = { maxBytes: MAX_ACL_DESCRIPTION_BYTES, noNul: true };
/** Certificate common names: any non-empty text without NUL. */
export const COMMON_NAME_RULES: StringRules = {
  maxBytes: MAX_COMMON_NAME_BYTES,
  nonEmpty: true,
  noNul: true,
};
const KV_PREFIX_RULES: StringRules = { maxBytes: MAX_KEY_BYTES, noNul: true };

/** The resources and the accesses each takes. */
export const RULE_ACCESSES = {
  kv: ["read", "write"],
  task: ["submit", "read", "cancel"],
  vm: ["manage", "read"],
  worker: ["manage", "read"],
  cluster: ["operator", "read"],
  acl: ["manage", "read"],
  lease: ["write", "read"],
  node: ["report"],
} as const satisfies Record<AclRule["resource"], readonly string[]>;

const RESOURCES = Object.keys(RULE_ACCESSES) as AclRule["resource"][];

/** Reads one rule. */
export function readAclRule(value: unknown, path: FieldPath): AclRule {
  const resource = new FieldReader(value, path).oneOf("resource", RESOURCES);
  const fields = new FieldReader(value, path);
  fields.value("resource");
  const access = fields.oneOf("access", RULE_ACCESSES[resource] as readonly string[]);
  let rule: AclRule;
  switch (resource) {
    case "kv":
      rule = {
        resource,
        access: access as "read" | "write",
        prefix: fields.string("prefix", KV_PREFIX_RULES),
      };
      break;
    case "node":
      rule = {
        resource,
        access: "report",
        nodeId: fields.integer("nodeId", 1, Number.MAX_SAFE_INTEGER),
      };
      break;
    default:
      rule = { resource, access } as AclRule;
  }
  fields.end();
  return Object.freeze(rule);
}

function readPolicyNames(fields: FieldReader, name: string): readonly string[] {
  const names = fields.array(name, MAX_POLICIES_PER_HOLDER, (item, path) =>
    checkString(item, path, POLICY_NAME_RULES),
  );
  if (new Set(names).size !== names.length) {
    throw new InvalidArgumentError(`${fields.path(name)} names a policy twice`);
  }
  return Object.freeze([...names].sort());
}

/** Reads a policy. */
export function readAclPolicy(fields: FieldReader): AclPolicy {
  const policy: AclPolicy = {
    name: fields.string("name", POLICY_NAME_RULES),
    description: fields.string("description", DESCRIPTION_RULES),
    rules: fields.array("rules", MAX_RULES_PER_POLICY, readAclRule),
  };
  fields.end();
  return Object.freeze(policy);
}

/** Reads a token record. */
export function readAclToken(fields: FieldReader): AclToken {
  const token: AclToken = {
    accessorId: fields.string("accessorId", ACCESSOR_ID_RULES),
    secretHash: fields.string("secretHash", SECRET_HASH_RULES),
    name: fields.string("name", TEXT_RULES),
    description: fields.string("description", DESCRIPTION_RULES),
    policies: readPolicyNames(fields, "policies"),
    management: fields.boolean("management"),
    createdAtMs: fields.integer("createdAtMs", 0, Number.MAX_SAFE_INTEGER),
    expiresAtMs: fields.nullableInteger("expiresAtMs", 0, Number.MAX_SAFE_INTEGER),
  };
  fields.end();
  return Object.freeze(token);
}

/** Reads a certificate binding. */
export function readAclCertBinding(fields: FieldReader): AclCertBinding {
  const binding: AclCertBinding = {
    commonName: fields.string("commonName", COMMON_NAME_RULES),
    description: fields.string("description", DESCRIPTION_RULES),
    policies: readPolicyNames(fields, "policies"),
  };
  fields.end();
  return Object.freeze(binding);
}

const COMMAND_TYPES = [
  "bootstrap",
  "upsertPolicy",
  "deletePolicy",
  "createToken",
  "revokeToken",
  "setCertBinding",
  "deleteCertBinding",
] as const satisfies readonly AclCommand["type"][];

/** Reads (checks and canonicalizes) an ACL command. */
export function readAclCommand(value: unknown): AclCommand {
  const type = new FieldReader(value, "ACL command").oneOf("type", COMMAND_TYPES);
  const fields = new FieldReader(value, type);
  fields.value("type");
  let command: AclCommand;
  switch (type) {
    case "bootstrap":
    case "createToken":
      command = { type, token: fields.object("token", readAclToken) };
      break;
    case "upsertPolicy":
      command = { type, policy: fields.object("policy", readAclPolicy) };
      break;
    case "deletePolicy":
      command = { type, name: fields.string("name", POLICY_NAME_RULES) };
      break;
    case "revokeToken":
      command = { type, accessorId: fields.string("accessorId", ACCESSOR_ID_RULES) };
      break;
    case "setCertBinding":
      command = { type, binding: fields.object("binding", readAclCertBinding) };
      break;
    case "deleteCertBinding":
      command = { type, commonName: fields.string("commonName", COMMON_NAME_RULES) };
      break;
  }
  fields.end();
  return Object.freeze(command);
}

/** Reads an ACL result. */
export function readAclResult(value: unknown): AclResult {
  const type = new FieldReader(value, "ACL result").oneOf("type", [
    "token",
    "policy",
    "certBinding",
    "deleted",
  ] as const);
  const fields = new FieldReader(value, `${type} result`);
  fields.value("type");
  let result: AclResult;
  switch (type) {
    case "token":
      result = { type, token: fields.object("token", readAclToken) };
      break;
    case "policy":
      result = { type, policy: fields.object("policy", readAclPolicy) };
      break;
    case "certBinding":
      result = { type, binding: fields.object("binding", readAclCertBinding) };
      break;
    case "deleted":
      result = { type };
      break;
  }
  fields.end();
  return Object.freeze(result);
}
