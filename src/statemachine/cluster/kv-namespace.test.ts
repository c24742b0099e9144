import { describe, expect, it } from "vitest";
import { ByteWriter } from "../codec/binary.js";
import { encodeCommandEnvelope, type ClientSession } from "../session/envelope.js";
import { encodeKvCommand } from "../kv/command-codec.js";
import { ClusterStateMachine, type ClusterStateMachineOptions } from "./cluster-state-machine.js";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../kv/limits.js";
import type { KvCommand } from "../kv/types.js";

const text = (value: string) => new TextEncoder().encode(value);

function cluster(options: ClusterStateMachineOptions = {}) {
  const kv = new ClusterStateMachine(options);
  let index = 0;
  const applyRaw = (data: Uint8Array) => kv.apply({ index: ++index, term: 1, data });
  const run = (command: KvCommand, atMs = 0, session?: ClientSession) =>
    applyRaw(
      encodeCommandEnvelope({
        proposedAtMs: atMs,
        payload: encodeKvCommand(command),
        ...(session === undefined ? {} : { session }),
      }),
    );
  return { kv, run, applyRaw };
}

const s = (clientId: string, sequence: number, ackedBelow = sequence): ClientSession => ({
  clientId,
  sequence,
  ackedBelow,
});

describe("the kv namespace: exactly-once writes", () => {
  it("a duplicated put returns its first result and does not bump the revision", () => {
    const { kv, run } = cluster();
    const put: KvCommand = { op: "put", key: "k", value: text("v") };
    const first = run(put, 0, s("c", 1));
    expect(first).toEqual({ ok: true, value: { op: "put", revision: 1 } });
    expect(run(put, 5, s("c", 1))).toEqual(first);
    expect(kv.revision).toBe(1);
    expect(kv.read("k")).toMatchObject({ version: 1 });
  });

  it("a duplicated increment-by-CAS applies once and answers the same both times", () => {
    const { kv, run } = cluster();
    run({ op: "put", key: "n", value: text("1") }, 0, s("c", 1));
    const increment: KvCommand = {
      op: "cas",
      key: "n",
      expected: { kind: "value", value: text("1") },
      value: text("2"),
    };
    const first = run(increment, 0, s("c", 2, 1));
    expect(first).toEqual({ ok: true, value: { op: "cas", succeeded: true, revision: 2 } });
    run({ op: "put", key: "n", value: text("1") }, 0, s("other", 1));
    expect(run(increment, 0, s("c", 2, 1))).toEqual(first);
    expect(kv.read("n")?.value).toEqual(text("1"));
    expect(kv.revision).toBe(3);
  });

  it("a duplicate of a failed CAS returns the failure it first saw", () => {
    const { run } = cluster();
    run({ op: "put", key: "lock", value: text("x") }, 0, s("holder", 1));
    const grab: KvCommand = {
      op: "cas",
      key: "lock",
      expected: { kind: "absent" },
      value: text("me"),
    };
    const first = run(grab, 0, s("c", 1));
    expect(first).toMatchObject({ ok: true, value: { succeeded: false } });
    run({ op: "delete", key: "lock" }, 0, s("holder", 2));
    expect(run(grab, 0, s("c", 1))).toEqual(first);
  });

  it("ackedBelow discards results: a settled retry is refused, not applied", () => {
    const { kv, run } = cluster();
    run({ op: "put", key: "a", value: text("1") }, 0, s("c", 1));
    run({ op: "put", key: "b", value: text("1") }, 0, s("c", 2, 2));
    expect(kv.session("c")?.keptSequences).toEqual([2]);
    expect(run({ op: "put", key: "a", value: text("1") }, 0, s("c", 1))).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", reason: "SEQUENCE_SETTLED" },
    });
    expect(kv.revision).toBe(2);
  });

  it("gets bypass the session: they run every time and keep nothing", () => {
    const { kv, run } = cluster();
    run({ op: "put", key: "a", value: text("1") }, 0, s("c", 1));
    expect(run({ op: "get", key: "a" }, 0, s("c", 2, 1))).toMatchObject({
      ok: true,
      value: { op: "get", revision: 1, entry: { value: text("1") } },
    });
    expect(kv.session("c")?.keptSequences).toEqual([1]);
  });
});

describe("the kv namespace: sessions expire by log time only", () => {
  it("a command with a later proposedAtMs expires idle sessions", () => {
    const { kv, run } = cluster({ sessions: { sessionTimeoutMs: 60_000 } });
    run({ op: "put", key: "a", value: text("1") }, 1_000, s("idle", 1));
    run({ op: "put", key: "b", value: text("1") }, 30_000, s("busy", 1));
    run({ op: "put", key: "b", value: text("2") }, 61_000, s("busy", 2));
    expect(kv.session("idle")).toBeUndefined();
    expect(kv.session("busy")).toBeDefined();
    expect(kv.logTimeMs).toBe(61_000);
    expect(run({ op: "put", key: "a", value: text("2") }, 61_000, s("idle", 2))).toMatchObject({
      error: { code: "CONFLICT", reason: "SESSION_EXPIRED" },
    });
    expect(kv.read("a")?.value).toEqual(text("1"));
  });

  it("bounds the number of sessions, evicting the idle-longest", () => {
    const { kv, run } = cluster({ sessions: { maxSessions: 2, minIdleBeforeEvictionMs: 10 } });
    run({ op: "put", key: "a", value: text("") }, 1, s("one", 1));
    run({ op: "put", key: "a", value: text("") }, 2, s("two", 1));
    run({ op: "put", key: "a", value: text("") }, 3, s("one", 2));
    expect(run({ op: "put", key: "a", value: text("") }, 4, s("three", 1))).toMatchObject({
      error: { code: "OVERLOADED", reason: "SESSIONS_FULL" },
    });
    expect(kv.revision).toBe(3);
    run({ op: "put", key: "a", value: text("") }, 12, s("three", 1));
    expect(kv.sessionCount).toBe(2);
    expect(kv.session("two")).toBeUndefined();
    expect(kv.session("one")).toBeDefined();
  });
});

describe("the kv namespace: malformed and oversized commands", () => {
  it("answer with a typed error result and change nothing", () => {
    const { kv, run, applyRaw } = cluster();
    run({ op: "put", key: "a", value: text("1") }, 10, s("c", 1));
    const before = kv.snapshot();
    const envelope = (payload: Uint8Array) =>
      encodeCommandEnvelope({ proposedAtMs: 99, session: s("c", 2), payload });
    const bigKey = new ByteWriter()
      .u8(1)
      .u8(1)
      .string("k".repeat(MAX_KEY_BYTES + 1))
      .finish();
    const bigValue = new ByteWriter()
      .u8(1)
      .u8(2)
      .u8(0)
      .string("k")
      .bytes(new Uint8Array(MAX_VALUE_BYTES + 1))
      .finish();
    const expectations: [Uint8Array, string][] = [
      [new Uint8Array([0xff, 0, 1]), "INVALID_ARGUMENT"],
      [envelope(new Uint8Array([1, 42])), "INVALID_ARGUMENT"],
      [envelope(new Uint8Array(0)), "INVALID_ARGUMENT"],
      [envelope(bigKey), "TOO_LARGE"],
      [envelope(bigValue), "TOO_LARGE"],
    ];
    for (const [data, code] of expectations) {
      expect(applyRaw(data)).toMatchObject({ ok: false, error: { code } });
    }
    expect(kv.snapshot()).toEqual(before);
    // The session did not consume sequence 2.
    expect(run({ op: "put", key: "a", value: text("2") }, 99, s("c", 2))).toMatchObject({
      ok: true,
    });
  });
});

describe("the kv namespace: snapshot and restore", () => {
  it("continues identically after restore and produces identical snapshot bytes", () => {
    const script: [KvCommand, number, ClientSession | undefined][] = [
      [{ op: "put", key: "x", value: text("1") }, 10, s("c", 1)],
      [{ op: "put", key: "y", value: text("2"), returnPrevious: true }, 20, s("d", 1)],
      [
        {
          op: "cas",
          key: "x",
          expected: { kind: "modRevision", modRevision: 1 },
          value: text("3"),
        },
        30,
        s("c", 2, 1),
      ],
      [{ op: "delete", key: "y", returnPrevious: true }, 40, undefined],
    ];
    const after: [KvCommand, number, ClientSession | undefined][] = [
      [
        {
          op: "cas",
          key: "x",
          expected: { kind: "modRevision", modRevision: 1 },
          value: text("3"),
        },
        50,
        s("c", 2, 1),
      ],
      [{ op: "put", key: "x", value: text("1") }, 50, s("c", 1, 1)],
      [{ op: "put", key: "z", value: text("4") }, 60, s("d", 2)],
      [{ op: "get", key: "x" }, 70, undefined],
    ];
    const original = cluster();
    for (const [command, atMs, session] of script) original.run(command, atMs, session);
    const restored = cluster();
    restored.kv.restore(original.kv.snapshot());
    expect(restored.kv.snapshot()).toEqual(original.kv.snapshot());
    for (const [command, atMs, session] of after) {
      expect(restored.run(command, atMs, session)).toEqual(original.run(command, atMs, session));
    }
    expect(restored.kv.snapshot()).toEqual(original.kv.snapshot());
    expect(restored.kv.revision).toBe(5);
  });
});
