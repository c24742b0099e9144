/**
 * Authorization as pure functions: the permission a request needs, whether a policy's rules
 * grant it, and the text form of both (`kv:read:app/`, `task:submit`, `node:report:3`) that the
 * CLI takes and error messages name. Deny by default: a permission is granted only by a rule
 * that covers it (or by a management identity, which the API checks before calling these).
 */
import { InvalidArgumentError } from "../../common/index.js";
import { readAclRule, RULE_ACCESSES } from "./reader.js";
import type { AclRule } from "./types.js";

/**
 * What one request needs. kv permissions name the key (a list: its prefix); `cluster:join`
 * names the node that asks to be added (a node may add itself; an operator may add anyone);
 * `cluster:relay` is a server handing the leader what agents sent it (heartbeats);
 * `node:report` names the node a report is about.
 */
export type Permission =
  | { readonly resource: "kv"; readonly access: "read" | "write"; readonly key: string }
  | { readonly resource: "task"; readonly access: "submit" | "read" | "cancel" }
  | { readonly resource: "vm"; readonly access: "manage" | "read" }
  | { readonly resource: "worker"; readonly access: "manage" | "read" }
  | { readonly resource: "cluster"; readonly access: "operator" | "read" | "relay" }
  | { readonly resource: "cluster"; readonly access: "join"; readonly nodeId: number }
  | { readonly resource: "acl"; readonly access: "manage" | "read" }
  | { readonly resource: "lease"; readonly access: "write" | "read" }
  | { readonly resource: "node"; readonly access: "report"; readonly nodeId: number };

/** The access of each resource that implies the others (write ⊇ read, manage ⊇ read, …). */
const STRONGER: Readonly<Record<string, string | undefined>> = {
  "kv:read": "write",
  "vm:read": "manage",
  "worker:read": "manage",
  "cluster:read": "operator",
  "cluster:join": "operator",
  "cluster:relay": "operator",
  "acl:read": "manage",
  "lease:read": "write",
};

/** True if `rule` grants `permission`. Throws nothing. */
export function ruleGrants(rule: AclRule, permission: Permission): boolean {
  if (rule.resource !== permission.resource) return false;
  const accessOk =
    rule.access === permission.access ||
    STRONGER[`${permission.resource}:${permission.access}`] === rule.access;
  if (!accessOk) return false;
  switch (permission.resource) {
    case "kv":
      return permission.key.startsWith((rule as { prefix: string }).prefix);
    case "node":
      return (rule as { nodeId: number }).nodeId === permission.nodeId;
    default:
      return true;
  }
}

/** True if any of `rules` grants `permission` (deny by default). Throws nothing. */
export function rulesGrant(rules: Iterable<AclRule>, permission: Permission): boolean {
  for (const rule of rules) if (ruleGrants(rule, permission)) return true;
  return false;
}

/** The text form of a permission, for messages and the audit log: `kv:write:app/x`. */
export function permissionText(permission: Permission): string {
  switch (permission.resource) {
    case "kv":
      return `kv:${permission.access}:${permission.key}`;
    case "node":
      return `node:report:${permission.nodeId}`;
    case "cluster":
      return permission.access === "join"
        ? `cluster:join:${permission.nodeId}`
        : `cluster:${permission.access}`;
    default:
      return `${permission.resource}:${permission.access}`;
  }
}

/** The text form of a rule: `kv:read:app/`, `kv:write:` (every key), `task:submit`, `node:report:3`. */
export function formatRule(rule: AclRule): string {
  switch (rule.resource) {
    case "kv":
      return `kv:${rule.access}:${rule.prefix}`;
    case "node":
      return `node:report:${rule.nodeId}`;
    default:
      return `${rule.resource}:${rule.access}`;
  }
}

/**
 * Parses a rule's text form (see {@link formatRule}; `kv:read` without a prefix means every
 * key). Throws `InvalidArgumentError` naming the resources and accesses there are.
 */
export function parseRule(text: string): AclRule {
  const first = text.indexOf(":");
  const second = first < 0 ? -1 : text.indexOf(":", first + 1);
  const resource = first < 0 ? text : text.slice(0, first);
  const access =
    first < 0 ? "" : second < 0 ? text.slice(first + 1) : text.slice(first + 1, second);
  const rest = second < 0 ? undefined : text.slice(second + 1);
  const accesses = (RULE_ACCESSES as Record<string, readonly string[] | undefined>)[resource];
  if (accesses === undefined || !accesses.includes(access)) {
    const known = Object.entries(RULE_ACCESSES)
      .map(([name, list]) => `${name}:${list.join("|")}`)
      .join(", ");
    throw new InvalidArgumentError(
      `rule ${JSON.stringify(text)} is not RESOURCE:ACCESS[:SCOPE]; the rules are ${known} (kv takes a key prefix, node:report a node id)`,
    );
  }
  if (resource === "kv") return readAclRule({ resource, access, prefix: rest ?? "" }, "rule");
  if (resource === "node") {
    const nodeId = Number(rest);
    if (rest === undefined || !/^[1-9][0-9]*$/.test(rest)) {
      throw new InvalidArgumentError(
        `rule ${JSON.stringify(text)}: node:report takes a node id, e.g. node:report:3`,
      );
    }
    return readAclRule({ resource, access, nodeId }, "rule");
  }
  if (rest !== undefined) {
    throw new InvalidArgumentError(
      `rule ${JSON.stringify(text)}: ${resource}:${access} takes no scope`,
    );
  }
  return readAclRule({ resource, access }, "rule");
}
