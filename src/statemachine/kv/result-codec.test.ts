import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../common/index.js";
import { decodeKvResult, encodeKvResult } from "./result-codec.js";
import type { KvEntry, KvResult } from "./types.js";

const entryArbitrary: fc.Arbitrary<KvEntry> = fc
  .record({
    key: fc.string({ minLength: 1, maxLength: 8, unit: "grapheme" }),
    value: fc.uint8Array({ maxLength: 8 }),
    createRevision: fc.integer({ min: 1, max: 1000 }),
    extra: fc.integer({ min: 0, max: 1000 }),
    version: fc.integer({ min: 1, max: 1000 }),
  })
  .map(({ extra, ...entry }) => ({ ...entry, modRevision: entry.createRevision + extra }));

const revision = fc.maxSafeNat();
const resultArbitrary: fc.Arbitrary<KvResult> = fc.oneof(
  fc.record({ op: fc.constant("get" as const), revision, entry: fc.option(entryArbitrary) }),
  fc.record({ op: fc.constant("put" as const), revision }),
  fc.record({ op: fc.constant("put" as const), revision, previous: entryArbitrary }),
  fc.record({ op: fc.constant("delete" as const), deleted: fc.boolean(), revision }),
  fc.record({
    op: fc.constant("delete" as const),
    deleted: fc.constant(true),
    revision,
    previous: entryArbitrary,
  }),
  fc.record({ op: fc.constant("cas" as const), succeeded: fc.constant(true as const), revision }),
  fc.record({
    op: fc.constant("cas" as const),
    succeeded: fc.constant(false as const),
    revision,
    current: fc.option(entryArbitrary),
  }),
);

describe("kv result encoding", () => {
  it("round-trips every result exactly", () => {
    fc.assert(
      fc.property(resultArbitrary, (result) => {
        const decoded = decodeKvResult(encodeKvResult(result));
        expect(decoded).toEqual(result);
        // No optional field appears or disappears (toEqual alone ignores undefined ones).
        expect(Object.keys(decoded).sort()).toEqual(Object.keys(result).sort());
      }),
    );
  });

  it("refuses truncated, trailing and implausible bytes", () => {
    const bytes = encodeKvResult({
      op: "put",
      revision: 9,
      previous: {
        key: "k",
        value: new Uint8Array([1]),
        createRevision: 2,
        modRevision: 3,
        version: 2,
      },
    });
    for (let length = 0; length < bytes.length; length++) {
      expect(() => decodeKvResult(bytes.subarray(0, length))).toThrow(InvalidArgumentError);
    }
    expect(() => decodeKvResult(new Uint8Array([...bytes, 0]))).toThrow(InvalidArgumentError);
    expect(() => decodeKvResult(new Uint8Array([99]))).toThrow(/unknown op/);
    const badRevisions = encodeKvResult({
      op: "get",
      revision: 9,
      entry: { key: "k", value: new Uint8Array(), createRevision: 5, modRevision: 4, version: 1 },
    });
    expect(() => decodeKvResult(badRevisions)).toThrow(/createRevision 5, modRevision 4/);
  });
});
