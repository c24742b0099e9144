/**
 * The ACL namespace's state: each command's effect and refusals, the token index by hash kept
 * in step with apply, snapshot round trips and refusals, and codec fuzzing (a malformed command
 * is refused with a typed error, never thrown out of apply).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCommandEnvelope } from "../session/envelope.js";
import { ClusterStateMachine } from "../cluster/cluster-state-machine.js";
import { AclState } from "./acl-state.js";
import { decodeAclCommand, decodeAclResult, encodeAclCommand, encodeAclResult } from "./codec.js";
import type { AclCommand, AclToken } from "./types.js";

const hash = (n: number) => n.toString(16).padStart(64, "0");

function token(n: number, overrides: Partial<AclToken> = {}): AclToken {
  return {
    accessorId: `acc-${n}`,
    secretHash: hash(n),
    name: `token ${n}`,
    description: "",
    policies: [],
    management: false,
    createdAtMs: 5,
    expiresAtMs: null,
    ...overrides,
  };
}

const READER = {
  name: "reader",
  description: "reads app/",
  rules: [{ resource: "kv" as const, access: "read" as const, prefix: "app/" }],
};

function applied(commands: AclCommand[], state = new AclState()) {
  const results = commands.map((command) => state.apply(command, 100));
  return { state, results };
}

describe("AclState: commands", () => {
  it("bootstraps once; a second bootstrap is a CONFLICT and changes nothing", () => {
    const { state, results } = applied([
      { type: "bootstrap", token: token(1, { management: true }) },
      { type: "bootstrap", token: token(2, { management: true }) },
    ]);
    expect(results[0]).toMatchObject({ ok: true, value: { type: "token" } });
    expect(results[1]).toMatchObject({ ok: false, error: { code: "CONFLICT" } });
    expect(state.bootstrapped).toBe(true);
    expect(state.tokens().map((t) => t.accessorId)).toEqual(["acc-1"]);
    expect(state.tokenByHash(hash(2))).toBeUndefined();
  });

  it("refuses a bootstrap token that is not a management token", () => {
    const { state, results } = applied([{ type: "bootstrap", token: token(1) }]);
    expect(results[0]).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(state.bootstrapped).toBe(false);
  });

  it("creates tokens holding existing policies only; accessor and hash are unique", () => {
    const { state, results } = applied([
      { type: "createToken", token: token(1, { policies: ["reader"] }) },
      { type: "upsertPolicy", policy: READER },
      { type: "createToken", token: token(1, { policies: ["reader"] }) },
      { type: "createToken", token: token(2, { accessorId: "acc-1" }) },
      { type: "createToken", token: token(1, { accessorId: "other" }) },
      { type: "createToken", token: token(3, { management: true, policies: ["reader"] }) },
    ]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "NOT_FOUND",
      "ok",
      "ok",
      "CONFLICT",
      "CONFLICT",
      "INVALID_ARGUMENT",
    ]);
    expect(state.tokenByHash(hash(1))?.policies).toEqual(["reader"]);
  });

  it("refuses a token that would already be expired at log time", () => {
    const state = new AclState();
    expect(
      state.apply({ type: "createToken", token: token(1, { expiresAtMs: 100 }) }, 100),
    ).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT" },
    });
    expect(
      state.apply({ type: "createToken", token: token(1, { expiresAtMs: 101 }) }, 100).ok,
    ).toBe(true);
  });

  it("revokes a token: gone from both the accessor and the hash index", () => {
    const { state, results } = applied([
      { type: "createToken", token: token(1) },
      { type: "revokeToken", accessorId: "acc-1" },
      { type: "revokeToken", accessorId: "acc-1" },
    ]);
    expect(results.map((r) => (r.ok ? r.value.type : r.error.code))).toEqual([
      "token",
      "deleted",
      "NOT_FOUND",
    ]);
    expect(state.token("acc-1")).toBeUndefined();
    expect(state.tokenByHash(hash(1))).toBeUndefined();
  });

  it("upserts and deletes policies; bindings must name existing policies", () => {
    const { state, results } = applied([
      {
        type: "setCertBinding",
        binding: { commonName: "alice", description: "", policies: ["reader"] },
      },
      { type: "upsertPolicy", policy: READER },
      { type: "upsertPolicy", policy: { ...READER, description: "v2" } },
      {
        type: "setCertBinding",
        binding: { commonName: "alice", description: "", policies: ["reader"] },
      },
      { type: "deletePolicy", name: "reader" },
      { type: "deletePolicy", name: "reader" },
      { type: "deleteCertBinding", commonName: "alice" },
      { type: "deleteCertBinding", commonName: "alice" },
    ]);
    expect(results.map((r) => (r.ok ? r.value.type : r.error.code))).toEqual([
      "NOT_FOUND",
      "policy",
      "policy",
      "certBinding",
      "deleted",
      "NOT_FOUND",
      "deleted",
      "NOT_FOUND",
    ]);
    expect(state.policies()).toEqual([]);
    expect(state.certBindings()).toEqual([]);
  });
});

describe("AclState: snapshots", () => {
  function populated(): AclState {
    return applied([
      { type: "bootstrap", token: token(9, { management: true }) },
      { type: "upsertPolicy", policy: READER },
      {
        type: "upsertPolicy",
        policy: {
          name: "ops",
          description: "",
          rules: [{ resource: "cluster", access: "operator" }],
        },
      },
      {
        type: "createToken",
        token: token(2, { policies: ["ops", "reader"], expiresAtMs: 10_000 }),
      },
      {
        type: "setCertBinding",
        binding: { commonName: "CN with spaces", description: "x", policies: ["ops"] },
      },
      // A dangling policy name after a delete survives a snapshot too.
      { type: "deletePolicy", name: "ops" },
    ]).state;
  }

  it("round-trips, index included, byte for byte", () => {
    const source = populated();
    const restored = AclState.restore(source.snapshot());
    expect(restored.snapshot()).toEqual(source.snapshot());
    expect(restored.bootstrapped).toBe(true);
    expect(restored.tokenByHash(hash(2))).toEqual(source.tokenByHash(hash(2)));
    expect(restored.certBinding("CN with spaces")?.policies).toEqual(["ops"]);
  });

  it("refuses any flipped byte of the snapshot with INVALID_ARGUMENT, never another error", () => {
    const good = populated().snapshot();
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = good.slice();
        bad[at] = (bad[at] as number) ^ xor;
        try {
          AclState.restore(bad);
        } catch (error) {
          expect(error).toMatchObject({ code: "INVALID_ARGUMENT" });
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("ACL codec", () => {
  it("round-trips every command and result; keys come out in canonical order", () => {
    const commands: AclCommand[] = [
      { type: "bootstrap", token: token(1, { management: true }) },
      { type: "upsertPolicy", policy: READER },
      { type: "deletePolicy", name: "p" },
      { type: "createToken", token: token(2, { policies: ["b", "a"] }) },
      { type: "revokeToken", accessorId: "acc-2" },
      { type: "setCertBinding", binding: { commonName: "c", description: "", policies: [] } },
      { type: "deleteCertBinding", commonName: "c" },
    ];
    for (const command of commands) {
      const decoded = decodeAclCommand(encodeAclCommand(command));
      expect(encodeAclCommand(decoded)).toEqual(encodeAclCommand(command));
    }
    expect(decodeAclCommand(encodeAclCommand(commands[3] as AclCommand))).toMatchObject({
      token: { policies: ["a", "b"] },
    });
    const result = { type: "token" as const, token: token(3) };
    expect(decodeAclResult(encodeAclResult(result))).toEqual(result);
  });

  it("refuses bad fields by name", () => {
    const bad: [unknown, RegExp][] = [
      [{ type: "nope" }, /type must be one of/],
      [{ type: "deletePolicy", name: "has space" }, /not valid/],
      [{ type: "createToken", token: { ...token(1), secretHash: "xyz" } }, /SHA-256/],
      [{ type: "createToken", token: { ...token(1), extra: 1 } }, /not a known field/],
      [
        {
          type: "upsertPolicy",
          policy: { ...READER, rules: [{ resource: "kv", access: "delete", prefix: "" }] },
        },
        /access must be one of/,
      ],
      [
        {
          type: "upsertPolicy",
          policy: { ...READER, rules: [{ resource: "node", access: "report", nodeId: 0 }] },
        },
        /nodeId must be an integer/,
      ],
      [{ type: "createToken", token: { ...token(1), policies: ["a", "a"] } }, /twice/],
    ];
    for (const [command, message] of bad) {
      expect(() => encodeAclCommand(command as AclCommand)).toThrow(message);
    }
  });

  it("fuzz: any payload after the ACL byte is applied or refused with a typed result, never thrown", () => {
    const machine = new ClusterStateMachine();
    let index = 0;
    const valid = encodeAclCommand({ type: "createToken", token: token(1, { policies: [] }) });
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 80 }).map((bytes) => Uint8Array.of(0x20, ...bytes)),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
        const mutated = valid.slice();
        mutated[1 + (at % (mutated.length - 1))] = value;
        return mutated;
      }),
      fc
        .string({ maxLength: 60 })
        .map((text) => Uint8Array.of(0x20, ...new TextEncoder().encode(text))),
    );
    fc.assert(
      fc.property(payload, (bytes) => {
        const result = machine.apply({
          index: ++index,
          term: 1,
          data: encodeCommandEnvelope({ proposedAtMs: 1, payload: bytes }),
        });
        if (!result.ok) {
          expect(["INVALID_ARGUMENT", "TOO_LARGE", "CONFLICT", "NOT_FOUND"]).toContain(
            result.error.code,
          );
        }
      }),
      { numRuns: 1000 },
    );
  });
});
