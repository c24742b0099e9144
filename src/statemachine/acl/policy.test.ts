/**
 * Policy evaluation: deny by default, each rule grants exactly its resource and access (a
 * stronger access implies the weaker one), kv rules by key prefix, node rules by node id; and
 * the rule text form round-trips. A brute-force oracle over small universes checks `rulesGrant`.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  formatRule,
  parseRule,
  permissionText,
  ruleGrants,
  rulesGrant,
  type Permission,
} from "./policy.js";
import { RULE_ACCESSES } from "./reader.js";
import type { AclRule } from "./types.js";

const keys = ["", "a", "app", "app/", "app/x", "apq", "b/app/"];
const prefixes = ["", "app/", "app", "b"];
const nodeIds = [1, 2, 3];

function allRules(): AclRule[] {
  const rules: AclRule[] = [];
  for (const [resource, accesses] of Object.entries(RULE_ACCESSES)) {
    for (const access of accesses) {
      if (resource === "kv")
        for (const prefix of prefixes) rules.push({ resource, access, prefix } as AclRule);
      else if (resource === "node")
        for (const nodeId of nodeIds) rules.push({ resource, access: "report", nodeId });
      else rules.push({ resource, access } as AclRule);
    }
  }
  return rules;
}

function allPermissions(): Permission[] {
  const permissions: Permission[] = [];
  for (const key of keys)
    for (const access of ["read", "write"] as const)
      permissions.push({ resource: "kv", access, key });
  for (const access of ["submit", "read", "cancel"] as const)
    permissions.push({ resource: "task", access });
  for (const resource of ["vm", "worker", "acl"] as const)
    for (const access of ["manage", "read"] as const) permissions.push({ resource, access });
  for (const access of ["operator", "read"] as const)
    permissions.push({ resource: "cluster", access });
  for (const nodeId of nodeIds) {
    permissions.push({ resource: "cluster", access: "join", nodeId });
    permissions.push({ resource: "node", access: "report", nodeId });
  }
  return permissions;
}

/** The oracle, written as a table of what each rule means rather than as code paths. */
function oracle(rule: AclRule, p: Permission): boolean {
  const implied: Record<string, string[]> = {
    "kv:read": ["read"],
    "kv:write": ["read", "write"],
    "task:submit": ["submit"],
    "task:read": ["read"],
    "task:cancel": ["cancel"],
    "vm:read": ["read"],
    "vm:manage": ["read", "manage"],
    "worker:read": ["read"],
    "worker:manage": ["read", "manage"],
    "cluster:read": ["read"],
    "cluster:operator": ["read", "operator", "join"],
    "acl:read": ["read"],
    "acl:manage": ["read", "manage"],
    "node:report": ["report"],
  };
  if (rule.resource !== p.resource) return false;
  if (!(implied[`${rule.resource}:${rule.access}`] ?? []).includes(p.access)) return false;
  if (rule.resource === "kv" && p.resource === "kv")
    return p.key.slice(0, rule.prefix.length) === rule.prefix;
  if (rule.resource === "node" && p.resource === "node") return rule.nodeId === p.nodeId;
  return true;
}

describe("policy evaluation", () => {
  it("no rules grant nothing (deny by default)", () => {
    for (const permission of allPermissions()) expect(rulesGrant([], permission)).toBe(false);
  });

  it("each rule grants exactly what the oracle says, for every permission", () => {
    for (const rule of allRules()) {
      for (const permission of allPermissions()) {
        expect(
          ruleGrants(rule, permission),
          `${formatRule(rule)} vs ${permissionText(permission)}`,
        ).toBe(oracle(rule, permission));
      }
    }
  });

  it("a set of rules grants what any one of them grants", () => {
    const rules = allRules();
    const permissions = allPermissions();
    fc.assert(
      fc.property(fc.subarray(rules), fc.constantFrom(...permissions), (subset, permission) => {
        expect(rulesGrant(subset, permission)).toBe(
          subset.some((rule) => oracle(rule, permission)),
        );
      }),
      { numRuns: 500 },
    );
  });

  it("a kv read rule on app/ does not grant app (a prefix is not a directory name)", () => {
    const rule = parseRule("kv:read:app/");
    expect(ruleGrants(rule, { resource: "kv", access: "read", key: "app/x" })).toBe(true);
    expect(ruleGrants(rule, { resource: "kv", access: "read", key: "app" })).toBe(false);
    expect(ruleGrants(rule, { resource: "kv", access: "write", key: "app/x" })).toBe(false);
  });
});

describe("rule text", () => {
  it("round-trips every rule", () => {
    for (const rule of allRules()) expect(parseRule(formatRule(rule))).toEqual(rule);
  });

  it("reads kv:read without a prefix as every key, and a prefix holding colons whole", () => {
    expect(parseRule("kv:read")).toEqual({ resource: "kv", access: "read", prefix: "" });
    expect(parseRule("kv:write:a:b")).toEqual({ resource: "kv", access: "write", prefix: "a:b" });
  });

  it("refuses unknown resources, accesses and scopes, saying what exists", () => {
    expect(() => parseRule("kv:delete:x")).toThrow(/task:submit\|read\|cancel/);
    expect(() => parseRule("tasks:submit")).toThrow(/RESOURCE:ACCESS/);
    expect(() => parseRule("node:report")).toThrow(/node id/);
    expect(() => parseRule("node:report:0")).toThrow(/node id/);
    expect(() => parseRule("task:submit:x")).toThrow(/takes no scope/);
  });
});
