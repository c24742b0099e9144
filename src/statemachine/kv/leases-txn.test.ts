/**
 * Leases and txns in the kv store: keys under a lease vanish with it (through the same delete
 * path as a plain delete), txns apply all of a branch or nothing, compares follow etcd's rules,
 * the codec round-trips every new command and result, and snapshots carry leases.
 */
import { describe, expect, it } from "vitest";
import { decodeKvCommand, encodeKvCommand } from "./command-codec.js";
import { MAX_TXN_OPS } from "./limits.js";
import { decodeKvResult, encodeKvResult } from "./result-codec.js";
import { KvStore } from "./store.js";
import type { KvCommand, KvResult, KvTxnCommand } from "./types.js";

const text = (value: string) => new TextEncoder().encode(value);

function run(store: KvStore, command: KvCommand): KvResult {
  const result = store.execute(encodeDecode(command));
  if (!result.ok) throw new Error(`unexpected error result ${JSON.stringify(result.error)}`);
  const bytes = encodeKvResult(result.value);
  expect(decodeKvResult(bytes)).toEqual(result.value);
  return result.value;
}

function encodeDecode(command: KvCommand): KvCommand {
  return decodeKvCommand(encodeKvCommand(command));
}

function grant(store: KvStore, ttlMs = 5000): number {
  const result = run(store, { op: "leaseGrant", ttlMs });
  if (result.op !== "leaseGrant") throw new Error("not a grant");
  return result.id;
}

describe("leases", () => {
  it("grants ids from 1 and revoking deletes exactly the lease's keys, each at its own revision", () => {
    const store = new KvStore();
    const first = grant(store);
    const second = grant(store, 9000);
    expect([first, second]).toEqual([1, 2]);
    run(store, { op: "put", key: "b", value: text("1"), lease: first });
    run(store, { op: "put", key: "a", value: text("2"), lease: first });
    run(store, { op: "put", key: "c", value: text("3"), lease: second });
    run(store, { op: "put", key: "d", value: text("4") });
    expect(store.lease(first)).toEqual({ id: 1, ttlMs: 5000, keyCount: 2 });
    expect(store.leaseKeys(first)).toEqual(["a", "b"]);
    expect(run(store, { op: "leaseRevoke", ids: [first, 77] })).toEqual({
      op: "leaseRevoke",
      revoked: 1,
      deletedKeys: 2,
      revision: 6,
    });
    expect(store.read("a")).toBeNull();
    expect(store.read("b")).toBeNull();
    expect(store.read("c")?.value).toEqual(text("3"));
    expect(store.lease(first)).toBeUndefined();
    expect(store.leaseCount).toBe(1);
  });

  it("a put without the lease detaches the key, a delete detaches it, a put under another moves it", () => {
    const store = new KvStore();
    const one = grant(store);
    const two = grant(store);
    run(store, { op: "put", key: "k", value: text("1"), lease: one });
    run(store, { op: "put", key: "k", value: text("2") });
    expect(store.lease(one)?.keyCount).toBe(0);
    run(store, { op: "put", key: "k", value: text("3"), lease: two });
    run(store, { op: "put", key: "m", value: text("3"), lease: one });
    run(store, { op: "delete", key: "m" });
    run(store, { op: "leaseRevoke", ids: [one] });
    expect(store.read("k")?.value).toEqual(text("3"));
    run(store, { op: "leaseRevoke", ids: [two] });
    expect(store.read("k")).toBeNull();
  });

  it("a put under an unknown lease is refused and changes nothing", () => {
    const store = new KvStore();
    const result = store.execute({ op: "put", key: "k", value: text("1"), lease: 3 });
    expect(result).toMatchObject({
      ok: false,
      error: { code: "NOT_FOUND", reason: "LEASE_NOT_FOUND" },
    });
    expect(store.revision).toBe(0);
  });

  it("refuses a TTL out of range and a revoke of no ids", () => {
    expect(() => encodeKvCommand({ op: "leaseGrant", ttlMs: 10 })).toThrow(/ttlMs/);
    expect(() => encodeKvCommand({ op: "leaseRevoke", ids: [] })).toThrow(/at least one/);
    expect(() => encodeKvCommand({ op: "leaseRevoke", ids: [0] })).toThrow(/≥ 1/);
  });

  it("a snapshot carries leases and attachments; a restored store revokes the same keys", () => {
    const store = new KvStore();
    const one = grant(store, 3000);
    grant(store, 4000);
    run(store, { op: "put", key: "x", value: text("1"), lease: one });
    run(store, { op: "put", key: "y", value: text("1") });
    const copy = new KvStore();
    copy.restore(store.snapshot());
    expect(copy.snapshot()).toEqual(store.snapshot());
    expect(copy.lease(one)).toEqual({ id: one, ttlMs: 3000, keyCount: 1 });
    expect(grant(copy)).toBe(3);
    run(copy, { op: "leaseRevoke", ids: [one] });
    expect(copy.read("x")).toBeNull();
    expect(copy.read("y")).not.toBeNull();
  });
});

describe("txn", () => {
  it("runs the success branch when every compare holds, with per-op results", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "a", value: text("1") });
    const txn: KvTxnCommand = {
      op: "txn",
      compare: [
        { key: "a", target: "value", operator: "equal", value: text("1") },
        { key: "b", target: "createRevision", operator: "equal", number: 0 },
        { key: "a", target: "version", operator: "greater", number: 0 },
      ],
      success: [
        { op: "put", key: "b", value: text("2") },
        { op: "get", key: "b" },
        { op: "delete", key: "a" },
        { op: "delete", key: "zz" },
      ],
      failure: [{ op: "get", key: "a" }],
    };
    expect(run(store, txn)).toEqual({
      op: "txn",
      succeeded: true,
      revision: 3,
      results: [
        { op: "put", revision: 2 },
        {
          op: "get",
          entry: { key: "b", value: text("2"), createRevision: 2, modRevision: 2, version: 1 },
        },
        { op: "delete", deleted: true },
        { op: "delete", deleted: false },
      ],
    });
    // Now a is gone: the same txn takes the failure branch and changes nothing.
    expect(run(store, txn)).toEqual({
      op: "txn",
      succeeded: false,
      revision: 3,
      results: [{ op: "get", entry: null }],
    });
  });

  it("compares an absent key as zero revisions and no value", () => {
    const store = new KvStore();
    const holds = (compare: KvTxnCommand["compare"][number]) =>
      (
        run(store, { op: "txn", compare: [compare], success: [], failure: [] }) as {
          succeeded: boolean;
        }
      ).succeeded;
    expect(holds({ key: "n", target: "version", operator: "equal", number: 0 })).toBe(true);
    expect(holds({ key: "n", target: "lease", operator: "equal", number: 0 })).toBe(true);
    expect(holds({ key: "n", target: "value", operator: "notEqual", value: text("") })).toBe(true);
    expect(holds({ key: "n", target: "value", operator: "equal", value: text("") })).toBe(false);
    expect(holds({ key: "n", target: "modRevision", operator: "less", number: 1 })).toBe(true);
    const lease = grant(store);
    run(store, { op: "put", key: "n", value: text("b"), lease });
    expect(holds({ key: "n", target: "lease", operator: "equal", number: lease })).toBe(true);
    expect(holds({ key: "n", target: "value", operator: "greater", value: text("a") })).toBe(true);
    expect(holds({ key: "n", target: "value", operator: "less", value: text("ba") })).toBe(true);
  });

  it("applies nothing when one write of the branch is refused (unknown lease, quota)", () => {
    const store = new KvStore({ maxStoreBytes: 300 });
    run(store, { op: "put", key: "a", value: text("1") });
    const before = store.snapshot();
    const unknownLease = store.execute({
      op: "txn",
      compare: [],
      success: [
        { op: "delete", key: "a" },
        { op: "put", key: "b", value: text("2"), lease: 9 },
      ],
      failure: [],
    });
    expect(unknownLease).toMatchObject({ ok: false, error: { reason: "LEASE_NOT_FOUND" } });
    const overQuota = store.execute({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: "b", value: new Uint8Array(100) },
        { op: "put", key: "c", value: new Uint8Array(100) },
      ],
      failure: [],
    });
    expect(overQuota).toMatchObject({ ok: false, error: { reason: "QUOTA_EXCEEDED" } });
    expect(store.snapshot()).toEqual(before);
  });

  it("refuses a branch that writes a key twice or holds too many ops", () => {
    expect(() =>
      encodeKvCommand({
        op: "txn",
        compare: [],
        success: [
          { op: "put", key: "a", value: text("1") },
          { op: "delete", key: "a" },
        ],
        failure: [],
      }),
    ).toThrow(/twice/);
    const ops = Array.from({ length: MAX_TXN_OPS + 1 }, (_, i) => ({
      op: "get" as const,
      key: `k${i}`,
    }));
    expect(() => encodeKvCommand({ op: "txn", compare: [], success: ops, failure: [] })).toThrow(
      /limit/,
    );
  });

  it("decoding refuses truncated and trailing bytes of the new commands", () => {
    for (const command of [
      { op: "leaseGrant", ttlMs: 2000 },
      { op: "leaseRevoke", ids: [1, 2] },
      {
        op: "txn",
        compare: [{ key: "a", target: "modRevision", operator: "less", number: 4 }],
        success: [{ op: "put", key: "a", value: text("v"), lease: 2 }],
        failure: [{ op: "get", key: "a" }],
      },
    ] as KvCommand[]) {
      const bytes = encodeKvCommand(command);
      expect(decodeKvCommand(bytes)).toEqual(command);
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(() => decodeKvCommand(bytes.subarray(0, cut))).toThrow();
      }
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      expect(() => decodeKvCommand(longer)).toThrow(/trailing/);
    }
  });
});
