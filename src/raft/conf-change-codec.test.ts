import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../common/errors.js";
import {
  CONF_CHANGE_FORMAT_VERSION,
  MAX_CONF_CHANGES_PER_ENTRY,
  decodeConfChange,
  encodeConfChange,
} from "./conf-change-codec.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChange,
  type ConfChangeSingle,
} from "./types.js";

const confChangeArbitrary: fc.Arbitrary<ConfChange> = fc.record({
  transition: fc.constantFrom(...Object.values(ConfChangeTransition)),
  changes: fc.array(
    fc.record({
      type: fc.constantFrom(...Object.values(ConfChangeType)),
      nodeId: fc.oneof(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 0xffff_ffff }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.constant(Number.MAX_SAFE_INTEGER),
      ),
    }),
    { maxLength: 20 },
  ),
  context: fc.uint8Array({ maxLength: 200 }),
});

/** Decodes, and if that succeeds checks it re-encodes to the same bytes; else the error class. */
function decodeOrError(bytes: Uint8Array): "valid" | "invalid" {
  let decoded: ConfChange;
  try {
    decoded = decodeConfChange(bytes);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return "invalid";
  }
  expect(encodeConfChange(decoded)).toEqual(bytes);
  return "valid";
}

describe("conf change codec", () => {
  it("writes the documented layout", () => {
    const cc: ConfChange = {
      transition: ConfChangeTransition.Explicit,
      changes: [
        { type: ConfChangeType.AddNode, nodeId: 1 },
        { type: ConfChangeType.AddLearnerNode, nodeId: 300 },
      ],
      context: new Uint8Array([0xaa]),
    };
    // version, transition, count, (type, varint id)*, context length, context
    expect([...encodeConfChange(cc)]).toEqual([1, 2, 2, 0, 1, 2, 0xac, 0x02, 1, 0xaa]);
    expect(CONF_CHANGE_FORMAT_VERSION).toBe(1);
  });

  it("encodes the empty conf change (leave joint) in four bytes", () => {
    const leave: ConfChange = {
      transition: ConfChangeTransition.Auto,
      changes: [],
      context: new Uint8Array(),
    };
    expect([...encodeConfChange(leave)]).toEqual([1, 0, 0, 0]);
    expect(decodeConfChange(new Uint8Array([1, 0, 0, 0]))).toEqual(leave);
  });

  it("round-trips every valid conf change", () => {
    fc.assert(
      fc.property(confChangeArbitrary, (cc) => {
        const bytes = encodeConfChange(cc);
        const decoded = decodeConfChange(bytes);
        expect(decoded).toEqual(cc);
        expect(encodeConfChange(decoded)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips the largest node id in eight bytes", () => {
    const cc: ConfChange = {
      transition: ConfChangeTransition.Auto,
      changes: [{ type: ConfChangeType.RemoveNode, nodeId: Number.MAX_SAFE_INTEGER }],
      context: new Uint8Array(),
    };
    const bytes = encodeConfChange(cc);
    expect(bytes.byteLength).toBe(3 + 1 + 8 + 1);
    expect(decodeConfChange(bytes)).toEqual(cc);
  });

  it("decodes a context that does not alias the entry data", () => {
    const bytes = encodeConfChange({
      transition: ConfChangeTransition.Auto,
      changes: [],
      context: new Uint8Array([5, 6]),
    });
    const decoded = decodeConfChange(bytes);
    bytes[bytes.length - 1] = 9;
    expect([...decoded.context]).toEqual([5, 6]);
  });

  it("decodes from a view into a larger buffer", () => {
    const cc: ConfChange = {
      transition: ConfChangeTransition.Implicit,
      changes: [{ type: ConfChangeType.AddNode, nodeId: 7 }],
      context: new Uint8Array([1, 2, 3]),
    };
    const bytes = encodeConfChange(cc);
    const buffer = new Uint8Array(bytes.byteLength + 10).fill(0xff);
    buffer.set(bytes, 5);
    expect(decodeConfChange(buffer.subarray(5, 5 + bytes.byteLength))).toEqual(cc);
  });

  describe("decode rejects malformed data with InvalidArgumentError", () => {
    it.each([
      { name: "empty", bytes: [] },
      { name: "version only", bytes: [1] },
      { name: "unknown version", bytes: [2, 0, 0, 0] },
      { name: "version 0", bytes: [0, 0, 0, 0] },
      { name: "unknown transition", bytes: [1, 3, 0, 0] },
      { name: "missing context length", bytes: [1, 0, 0] },
      { name: "unknown change type", bytes: [1, 0, 1, 3, 1, 0] },
      { name: "node id 0", bytes: [1, 0, 1, 0, 0, 0] },
      { name: "truncated node id", bytes: [1, 0, 1, 0, 0x81] },
      { name: "count larger than the data", bytes: [1, 0, 5, 0, 1, 0] },
      { name: "non-canonical count", bytes: [1, 0, 0x80, 0x00, 0] },
      { name: "non-canonical node id", bytes: [1, 0, 1, 0, 0x81, 0x00, 0] },
      { name: "non-canonical context length", bytes: [1, 0, 0, 0x80, 0x00] },
      {
        name: "varint longer than 8 bytes",
        bytes: [1, 0, 1, 0, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0],
      },
      {
        name: "node id above MAX_SAFE_INTEGER",
        bytes: [1, 0, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0], // 2^53
      },
      {
        name: "node id of 2^56 - 1",
        bytes: [1, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0],
      },
      { name: "context shorter than its length", bytes: [1, 0, 0, 3, 1, 2] },
      { name: "trailing bytes", bytes: [1, 0, 0, 1, 1, 2] },
      { name: "trailing bytes after an empty context", bytes: [1, 0, 0, 0, 0] },
    ])("$name", ({ bytes }) => {
      expect(() => decodeConfChange(new Uint8Array(bytes))).toThrow(InvalidArgumentError);
    });

    it("more changes than MAX_CONF_CHANGES_PER_ENTRY", () => {
      const count = MAX_CONF_CHANGES_PER_ENTRY + 1;
      const bytes = [1, 0, (count % 128) | 0x80, Math.floor(count / 128)];
      for (let i = 0; i < count; i++) bytes.push(0, 1);
      bytes.push(0);
      expect(() => decodeConfChange(new Uint8Array(bytes))).toThrow(InvalidArgumentError);
      // one fewer is fine
      const ok = encodeConfChange({
        transition: ConfChangeTransition.Auto,
        changes: Array.from({ length: MAX_CONF_CHANGES_PER_ENTRY }, () => ({
          type: ConfChangeType.AddNode,
          nodeId: 1,
        })),
        context: new Uint8Array(),
      });
      expect(decodeConfChange(ok).changes).toHaveLength(MAX_CONF_CHANGES_PER_ENTRY);
    });
  });

  describe("encode rejects invalid conf changes with InvalidArgumentError", () => {
    const valid = { transition: ConfChangeTransition.Auto, context: new Uint8Array() };
    function withChange(change: ConfChangeSingle): ConfChange {
      return { ...valid, changes: [change] };
    }

    it.each([0, -1, 1.5, Number.NaN, Infinity, 2 ** 53])("node id %s", (nodeId) => {
      expect(() => encodeConfChange(withChange({ type: ConfChangeType.AddNode, nodeId }))).toThrow(
        InvalidArgumentError,
      );
    });

    it("unknown change type or transition, too many changes", () => {
      expect(() => encodeConfChange(withChange({ type: 3 as ConfChangeType, nodeId: 1 }))).toThrow(
        InvalidArgumentError,
      );
      expect(() =>
        encodeConfChange({ ...valid, transition: 3 as ConfChangeTransition, changes: [] }),
      ).toThrow(InvalidArgumentError);
      const tooMany = Array.from({ length: MAX_CONF_CHANGES_PER_ENTRY + 1 }, () => ({
        type: ConfChangeType.AddNode,
        nodeId: 1,
      }));
      expect(() => encodeConfChange({ ...valid, changes: tooMany })).toThrow(InvalidArgumentError);
    });
  });

  describe("fuzz", () => {
    it("random bytes decode to a conf change that re-encodes identically, or are rejected", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
          decodeOrError(bytes);
        }),
        { numRuns: 2000 },
      );
    });

    it("random bytes after a valid header, likewise", () => {
      fc.assert(
        fc.property(
          fc.constantFrom(0, 1, 2, 3),
          fc.uint8Array({ maxLength: 40 }),
          (transition, rest) => {
            decodeOrError(new Uint8Array([1, transition, ...rest]));
          },
        ),
        { numRuns: 2000 },
      );
    });

    it("mutated valid encodings (flipped, truncated, extended), likewise", () => {
      let valid = 0;
      let invalid = 0;
      fc.assert(
        fc.property(
          confChangeArbitrary,
          fc.nat(),
          fc.integer({ min: 0, max: 255 }),
          fc.constantFrom("flip", "truncate", "extend", "set"),
          (cc, where, value, how) => {
            const bytes = encodeConfChange(cc);
            const at = where % bytes.byteLength;
            let mutated: Uint8Array;
            if (how === "flip") {
              mutated = bytes.slice();
              mutated[at] = mutated[at]! ^ (1 << (value % 8));
            } else if (how === "set") {
              mutated = bytes.slice();
              mutated[at] = value;
            } else if (how === "truncate") {
              mutated = bytes.subarray(0, at);
            } else {
              mutated = new Uint8Array([...bytes, value]);
            }
            if (decodeOrError(mutated) === "valid") valid++;
            else invalid++;
          },
        ),
        { numRuns: 2000 },
      );
      // both outcomes are exercised, so the property is not vacuous
      expect(valid).toBeGreaterThan(0);
      expect(invalid).toBeGreaterThan(0);
    });
  });
});
