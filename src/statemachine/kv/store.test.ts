import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { ByteWriter } from "../codec/binary.js";
import { ENTRY_OVERHEAD_BYTES, MAX_KEY_BYTES, MAX_LIST_LIMIT, MAX_VALUE_BYTES } from "./limits.js";
import { KvStore } from "./store.js";
import type { KvCommand, KvResult } from "./types.js";

const text = (value: string) => new TextEncoder().encode(value);

function run(store: KvStore, command: KvCommand): KvResult {
  const result = store.execute(command);
  if (!result.ok) throw new Error(`unexpected error result ${JSON.stringify(result.error)}`);
  return result.value;
}

describe("KvStore commands", () => {
  it("put creates a key at a new revision and updates it at the next", () => {
    const store = new KvStore();
    expect(store.revision).toBe(0);
    expect(run(store, { op: "put", key: "a", value: text("1") })).toEqual({
      op: "put",
      revision: 1,
    });
    expect(run(store, { op: "put", key: "a", value: text("2"), returnPrevious: true })).toEqual({
      op: "put",
      revision: 2,
      previous: { key: "a", value: text("1"), createRevision: 1, modRevision: 1, version: 1 },
    });
    expect(store.read("a")).toEqual({
      key: "a",
      value: text("2"),
      createRevision: 1,
      modRevision: 2,
      version: 2,
    });
    expect(run(store, { op: "put", key: "b", value: text("x"), returnPrevious: true })).toEqual({
      op: "put",
      revision: 3,
    });
  });

  it("get returns the entry and the store revision, or null", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "a", value: text("1") });
    run(store, { op: "put", key: "b", value: text("2") });
    expect(run(store, { op: "get", key: "a" })).toEqual({
      op: "get",
      revision: 2,
      entry: { key: "a", value: text("1"), createRevision: 1, modRevision: 1, version: 1 },
    });
    expect(run(store, { op: "get", key: "zz" })).toEqual({ op: "get", revision: 2, entry: null });
    expect(store.revision).toBe(2);
  });

  it("delete removes a key at a new revision; deleting nothing keeps the revision", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "a", value: text("1") });
    expect(run(store, { op: "delete", key: "missing" })).toEqual({
      op: "delete",
      deleted: false,
      revision: 1,
    });
    expect(run(store, { op: "delete", key: "a", returnPrevious: true })).toEqual({
      op: "delete",
      deleted: true,
      revision: 2,
      previous: { key: "a", value: text("1"), createRevision: 1, modRevision: 1, version: 1 },
    });
    expect(store.read("a")).toBeNull();
    expect(run(store, { op: "put", key: "a", value: text("again") })).toEqual({
      op: "put",
      revision: 3,
    });
    expect(store.read("a")).toMatchObject({ createRevision: 3, modRevision: 3, version: 1 });
    expect(run(store, { op: "delete", key: "a" })).toEqual({
      op: "delete",
      deleted: true,
      revision: 4,
    });
  });

  it("compare-and-set on absence succeeds once", () => {
    const store = new KvStore();
    const lock: KvCommand = {
      op: "cas",
      key: "lock",
      expected: { kind: "absent" },
      value: text("me"),
    };
    expect(run(store, lock)).toEqual({ op: "cas", succeeded: true, revision: 1 });
    expect(run(store, lock)).toEqual({
      op: "cas",
      succeeded: false,
      revision: 1,
      current: { key: "lock", value: text("me"), createRevision: 1, modRevision: 1, version: 1 },
    });
    expect(store.revision).toBe(1);
  });

  it("compare-and-set on modRevision", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "k", value: text("v1") });
    run(store, { op: "put", key: "other", value: text("o") });
    const stale: KvCommand = {
      op: "cas",
      key: "k",
      expected: { kind: "modRevision", modRevision: 2 },
      value: text("v2"),
    };
    expect(run(store, stale)).toMatchObject({
      succeeded: false,
      revision: 2,
      current: { modRevision: 1 },
    });
    expect(
      run(store, {
        op: "cas",
        key: "k",
        expected: { kind: "modRevision", modRevision: 1 },
        value: text("v2"),
      }),
    ).toEqual({ op: "cas", succeeded: true, revision: 3 });
    expect(store.read("k")).toMatchObject({
      value: text("v2"),
      createRevision: 1,
      modRevision: 3,
      version: 2,
    });
    expect(
      run(store, {
        op: "cas",
        key: "none",
        expected: { kind: "modRevision", modRevision: 1 },
        value: text("x"),
      }),
    ).toEqual({ op: "cas", succeeded: false, revision: 3, current: null });
  });

  it("compare-and-set on value", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "n", value: text("1") });
    const increment = (from: string, to: string): KvCommand => ({
      op: "cas",
      key: "n",
      expected: { kind: "value", value: text(from) },
      value: text(to),
    });
    expect(run(store, increment("1", "2"))).toEqual({ op: "cas", succeeded: true, revision: 2 });
    expect(run(store, increment("1", "2"))).toMatchObject({
      succeeded: false,
      current: { value: text("2") },
    });
    expect(run(store, increment("12", "3"))).toMatchObject({ succeeded: false });
    expect(
      run(store, {
        op: "cas",
        key: "missing",
        expected: { kind: "value", value: text("") },
        value: text("x"),
      }),
    ).toMatchObject({ succeeded: false, current: null });
    expect(store.read("n")?.value).toEqual(text("2"));
  });

  it("hands out copies: mutating a returned value does not change the store", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "a", value: text("abc") });
    (store.read("a")?.value as Uint8Array)[0] = 0;
    const got = run(store, { op: "get", key: "a" });
    if (got.op === "get") (got.entry?.value as Uint8Array)[0] = 0;
    (store.list().entries[0]?.value as Uint8Array)[0] = 0;
    expect(store.read("a")?.value).toEqual(text("abc"));
  });

  it("refuses writes that would grow the store past its quota, and nothing else", () => {
    const store = new KvStore({ maxStoreBytes: 2 * (ENTRY_OVERHEAD_BYTES + 11) });
    run(store, { op: "put", key: "a", value: new Uint8Array(10) });
    run(store, { op: "put", key: "b", value: new Uint8Array(10) });
    expect(store.storeBytes).toBe(2 * (ENTRY_OVERHEAD_BYTES + 11));
    const refused = store.execute({ op: "put", key: "c", value: new Uint8Array(0) });
    expect(refused).toMatchObject({
      ok: false,
      error: { code: "OVERLOADED", reason: "QUOTA_EXCEEDED" },
    });
    expect(
      store.execute({
        op: "cas",
        key: "a",
        expected: { kind: "absent" },
        value: new Uint8Array(1),
      }),
    ).toMatchObject({ ok: true, value: { succeeded: false } });
    expect(
      store.execute({
        op: "cas",
        key: "a",
        expected: { kind: "modRevision", modRevision: 1 },
        value: new Uint8Array(11),
      }),
    ).toMatchObject({ ok: false, error: { reason: "QUOTA_EXCEEDED" } });
    expect(store.revision).toBe(2);
    expect(store.execute({ op: "put", key: "a", value: new Uint8Array(5) })).toMatchObject({
      ok: true,
    });
    expect(store.execute({ op: "put", key: "a", value: new Uint8Array(10) })).toMatchObject({
      ok: true,
    });
    run(store, { op: "delete", key: "b" });
    expect(store.execute({ op: "put", key: "c", value: new Uint8Array(0) })).toMatchObject({
      ok: true,
    });
    expect(store.storeBytes).toBe(2 * ENTRY_OVERHEAD_BYTES + 11 + 1);
  });

  it("refuses a bad quota option", () => {
    expect(() => new KvStore({ maxStoreBytes: 0 })).toThrow(InvalidArgumentError);
  });
});

describe("KvStore queries", () => {
  function storeWith(keys: string[]): KvStore {
    const store = new KvStore();
    for (const key of keys) run(store, { op: "put", key, value: text(key) });
    return store;
  }
  const keysOf = (store: KvStore, options: Parameters<KvStore["list"]>[0]) =>
    store.list(options).entries.map((entry) => entry.key);

  it("read validates its key", () => {
    const store = new KvStore();
    expect(store.read("nope")).toBeNull();
    expect(() => store.read("")).toThrow(InvalidArgumentError);
    expect(() => store.read("k".repeat(MAX_KEY_BYTES + 1))).toThrow(TooLargeError);
  });

  it("lists by prefix and by range, in code point order", () => {
    const store = storeWith(["b/2", "a", "b/1", "b", "c", "b/\uffff", "b/😀", "ba"]);
    expect(keysOf(store, {})).toEqual(["a", "b", "b/1", "b/2", "b/\uffff", "b/😀", "ba", "c"]);
    expect(keysOf(store, { prefix: "b/" })).toEqual(["b/1", "b/2", "b/\uffff", "b/😀"]);
    expect(keysOf(store, { start: "b/2", end: "c" })).toEqual(["b/2", "b/\uffff", "b/😀", "ba"]);
    expect(keysOf(store, { prefix: "b/", start: "a", end: "b/3" })).toEqual(["b/1", "b/2"]);
    expect(keysOf(store, { prefix: "b/", start: "b/3" })).toEqual(["b/\uffff", "b/😀"]);
    expect(keysOf(store, { prefix: "z" })).toEqual([]);
    expect(store.list({ prefix: "b" }).revision).toBe(8);
  });

  it("pages with limit, more and nextStart", () => {
    const store = storeWith(["a", "b", "c", "d", "e"]);
    const first = store.list({ limit: 2 });
    expect(first).toMatchObject({ more: true, nextStart: "c" });
    expect(first.entries.map((e) => e.key)).toEqual(["a", "b"]);
    const rest = store.list({ limit: 3, start: first.nextStart as string });
    expect(rest.entries.map((e) => e.key)).toEqual(["c", "d", "e"]);
    expect(rest.more).toBe(false);
    expect(rest.nextStart).toBeUndefined();
    expect(store.list({ limit: 5 }).more).toBe(false);
  });

  it("stops before MAX_LIST_RESULT_BYTES but returns at least one entry", () => {
    const store = new KvStore();
    for (const key of ["a", "b", "c", "d", "e"]) {
      run(store, { op: "put", key, value: new Uint8Array(MAX_VALUE_BYTES) });
    }
    const page = store.list({ limit: 10 });
    expect(page.entries.map((e) => e.key)).toEqual(["a", "b", "c"]);
    expect(page).toMatchObject({ more: true, nextStart: "d" });
  });

  it("refuses bad list options", () => {
    const store = new KvStore();
    expect(() => store.list({ limit: 0 })).toThrow(InvalidArgumentError);
    expect(() => store.list({ limit: MAX_LIST_LIMIT + 1 })).toThrow(InvalidArgumentError);
    expect(() => store.list({ limit: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => store.list({ prefix: "\ud800" })).toThrow(/prefix/);
  });
});

describe("KvStore snapshot", () => {
  it("restores the same keys, revisions and quota use, with equal bytes", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "b", value: text("2") });
    run(store, { op: "put", key: "a", value: text("1") });
    run(store, { op: "put", key: "b", value: text("3") });
    run(store, { op: "delete", key: "a" });
    run(store, { op: "put", key: "😀", value: text("") });
    const bytes = store.snapshot();
    const copy = new KvStore();
    copy.restore(bytes);
    expect(copy.snapshot()).toEqual(bytes);
    expect(copy.revision).toBe(5);
    expect(copy.storeBytes).toBe(store.storeBytes);
    expect(copy.list().entries).toEqual(store.list().entries);
    expect(run(copy, { op: "put", key: "c", value: text("") })).toEqual({ op: "put", revision: 6 });
  });

  it("sizes a snapshot exactly, so encoding it copies nothing twice (keys, multi-byte keys, leases)", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "a", value: text("1") });
    run(store, { op: "put", key: "😀é", value: text("two bytes é") });
    run(store, { op: "leaseGrant", ttlMs: 5000 });
    run(store, { op: "leaseGrant", ttlMs: 6000 });
    run(store, { op: "put", key: "empty", value: new Uint8Array(0) });
    const bytes = store.snapshot();
    // The writer's own buffer, handed over: no slack after the last byte, no copy.
    expect(bytes.byteLength).toBe(bytes.buffer.byteLength);
    const copy = new KvStore();
    copy.restore(bytes);
    expect(copy.snapshot()).toEqual(bytes);
  });

  it("refuses malformed snapshots and changes nothing", () => {
    const store = new KvStore();
    run(store, { op: "put", key: "keep", value: text("me") });
    const before = store.snapshot();
    const header = (revision: number, count: number) =>
      new ByteWriter().raw(text("BXKV")).u16(1).u53(revision).u32(count);
    const entry = (w: ByteWriter, key: string, create: number, mod: number, version: number) =>
      w.string(key).bytes(text("v")).u53(create).u53(mod).u53(version);
    const cases = [
      new Uint8Array(0),
      text("XXXX"),
      new ByteWriter().raw(text("BXKV")).u16(2).u53(0).u32(0).finish(),
      header(0, 1).finish(),
      entry(entry(header(5, 2), "b", 1, 1, 1), "a", 2, 2, 1).finish(), // out of order
      entry(entry(header(5, 2), "a", 1, 1, 1), "a", 2, 2, 1).finish(), // duplicate
      entry(header(5, 1), "a", 1, 6, 1).finish(), // modRevision past the store revision
      entry(header(5, 1), "a", 2, 3, 3).finish(), // more versions than revisions
      new ByteWriter().raw(header(0, 0).finish()).u8(0).finish(), // trailing byte
    ];
    for (const data of cases) {
      expect(() => store.restore(data)).toThrow(InvalidArgumentError);
      expect(store.snapshot()).toEqual(before);
    }
    expect(() => store.restore(entry(header(5, 1), "a", 2, 3, 2).finish())).not.toThrow();
  });
});
