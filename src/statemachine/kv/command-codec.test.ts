import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { ByteWriter } from "../codec/binary.js";
import { decodeKvCommand, encodeKvCommand, validateKvCommand } from "./command-codec.js";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./limits.js";
import type { KvCommand } from "./types.js";

const bytes = (...values: number[]) => new Uint8Array(values);

/** Every command shape, as the decoder returns it (a false returnPrevious omitted). */
export const kvCommandArbitrary: fc.Arbitrary<KvCommand> = (() => {
  const key = fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" });
  const value = fc.uint8Array({ maxLength: 16 });
  const expected = fc.oneof(
    fc.constant({ kind: "absent" as const }),
    fc.record({ kind: fc.constant("modRevision" as const), modRevision: fc.integer({ min: 1 }) }),
    fc.record({ kind: fc.constant("value" as const), value }),
  );
  return fc.oneof(
    fc.record({ op: fc.constant("get" as const), key }),
    fc.record({ op: fc.constant("put" as const), key, value }),
    fc.record({ op: fc.constant("put" as const), key, value, returnPrevious: fc.constant(true) }),
    fc.record({ op: fc.constant("delete" as const), key }),
    fc.record({ op: fc.constant("delete" as const), key, returnPrevious: fc.constant(true) }),
    fc.record({ op: fc.constant("cas" as const), key, expected, value }),
  );
})();

describe("kv command encoding", () => {
  it("round-trips every command", () => {
    fc.assert(
      fc.property(kvCommandArbitrary, (command) => {
        expect(decodeKvCommand(encodeKvCommand(command))).toEqual(command);
      }),
    );
  });

  it("has the documented layout", () => {
    expect([...encodeKvCommand({ op: "get", key: "k" })]).toEqual([1, 1, 0, 0, 0, 1, 0x6b]);
    expect([...encodeKvCommand({ op: "delete", key: "k", returnPrevious: true })]).toEqual([
      1, 3, 1, 0, 0, 0, 1, 0x6b,
    ]);
    expect([
      ...encodeKvCommand({ op: "cas", key: "k", expected: { kind: "absent" }, value: bytes(7) }),
    ]).toEqual([1, 4, 0, 0, 0, 1, 0x6b, 0, 0, 0, 0, 1, 7]);
  });

  describe("values of puts", () => {
    const valueOf = (command: KvCommand): Uint8Array => {
      if (command.op === "put") return command.value;
      if (command.op === "txn" && command.success[0]?.op === "put") return command.success[0].value;
      throw new Error(`no put value in ${command.op}`);
    };
    const put = (value: Uint8Array): Uint8Array => encodeKvCommand({ op: "put", key: "k", value });
    const txn = (value: Uint8Array): Uint8Array =>
      encodeKvCommand({
        op: "txn",
        compare: [],
        success: [{ op: "put", key: "k", value }],
        failure: [],
      });
    /** `encoded` placed at the start of a buffer `extra` bytes longer (a network read). */
    const inLargerBuffer = (encoded: Uint8Array, extra: number): Uint8Array => {
      const buffer = new Uint8Array(encoded.length + extra);
      buffer.set(encoded);
      return buffer.subarray(0, encoded.length);
    };

    it("are copies by default and views with `view` (replayed log data)", () => {
      for (const encoded of [put(bytes(1, 2, 3)), txn(bytes(4, 5))]) {
        const copied = valueOf(decodeKvCommand(encoded));
        const viewed = valueOf(decodeKvCommand(encoded, { values: "view" }));
        expect(viewed).toEqual(copied);
        expect(viewed.buffer).toBe(encoded.buffer);
        expect(copied.buffer).not.toBe(encoded.buffer);
      }
    });

    it("are encoded into a buffer of exactly their command's size (one allocation a put)", () => {
      fc.assert(
        fc.property(
          fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }),
          fc.uint8Array({ maxLength: 300 }),
          fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
          fc.boolean(),
          (key, value, lease, returnPrevious) => {
            const command: KvCommand = {
              op: "put",
              key,
              value,
              ...(lease === undefined ? {} : { lease }),
              ...(returnPrevious ? { returnPrevious } : {}),
            };
            const encoded = encodeKvCommand(command);
            expect(encoded.byteOffset).toBe(0);
            expect(encoded.buffer.byteLength).toBe(encoded.length);
            expect(decodeKvCommand(encoded)).toEqual(command);
          },
        ),
      );
    });

    it("are views with `lean` only where the view keeps little else alive", () => {
      const value = new Uint8Array(1000).fill(9);
      for (const encode of [put, txn]) {
        // An entry of its own (a proposal, a received entry): the value is most of it.
        const own = encode(value);
        expect(valueOf(decodeKvCommand(own, { values: "lean" })).buffer).toBe(own.buffer);
        // Slack up to the value's own size (or 256 bytes for small values) still shares.
        const slack = inLargerBuffer(own, 900);
        expect(valueOf(decodeKvCommand(slack, { values: "lean" })).buffer).toBe(slack.buffer);
        const small = inLargerBuffer(encode(bytes(1, 2)), 200);
        expect(valueOf(decodeKvCommand(small, { values: "lean" })).buffer).toBe(small.buffer);
        // A frame that carries much else: a copy, so the value does not keep the frame.
        const framed = inLargerBuffer(own, 64 * 1024);
        const copied = valueOf(decodeKvCommand(framed, { values: "lean" }));
        expect(copied).toEqual(value);
        expect(copied.buffer).not.toBe(framed.buffer);
        expect(copied.buffer.byteLength).toBe(value.length);
        // ... and a copy indeed, not a Buffer's slice() (a view).
        const inNodeBuffer = Buffer.from(framed.buffer, 0, framed.length);
        const fromBuffer = valueOf(decodeKvCommand(inNodeBuffer, { values: "lean" }));
        expect(fromBuffer.buffer).not.toBe(inNodeBuffer.buffer);
        expect(fromBuffer).toEqual(value);
      }
    });
  });

  it("omits a false returnPrevious", () => {
    expect(
      decodeKvCommand(
        encodeKvCommand({ op: "put", key: "k", value: bytes(), returnPrevious: false }),
      ),
    ).toEqual({ op: "put", key: "k", value: bytes() });
  });

  it("enforces key and value limits with TOO_LARGE, shape with INVALID_ARGUMENT", () => {
    const bigKey = "k".repeat(MAX_KEY_BYTES + 1);
    const bigValue = new Uint8Array(MAX_VALUE_BYTES + 1);
    expect(() => validateKvCommand({ op: "get", key: "k".repeat(MAX_KEY_BYTES) })).not.toThrow();
    expect(() => validateKvCommand({ op: "get", key: "é".repeat(MAX_KEY_BYTES / 2 + 1) })).toThrow(
      TooLargeError,
    );
    expect(() => encodeKvCommand({ op: "get", key: bigKey })).toThrow(TooLargeError);
    expect(() => encodeKvCommand({ op: "put", key: "k", value: bigValue })).toThrow(TooLargeError);
    expect(() =>
      encodeKvCommand({
        op: "cas",
        key: "k",
        expected: { kind: "value", value: bigValue },
        value: bytes(),
      }),
    ).toThrow(TooLargeError);
    expect(() =>
      encodeKvCommand({ op: "put", key: "k", value: new Uint8Array(MAX_VALUE_BYTES) }),
    ).not.toThrow();
    expect(() => encodeKvCommand({ op: "get", key: "" })).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand({ op: "get", key: "\udc00" })).toThrow(InvalidArgumentError);
    expect(() =>
      encodeKvCommand({
        op: "cas",
        key: "k",
        expected: { kind: "modRevision", modRevision: 0 },
        value: bytes(),
      }),
    ).toThrow(InvalidArgumentError);
    // @ts-expect-error: an op the type does not allow, as a peer's bad bytes could decode to.
    const unknownOp: KvCommand = { op: "nope", key: "k" };
    expect(() => validateKvCommand(unknownOp)).toThrow(/unknown kv op/);
    // @ts-expect-error: a value that is not bytes.
    const arrayValue: KvCommand = { op: "put", key: "k", value: [1] };
    expect(() => validateKvCommand(arrayValue)).toThrow(/Uint8Array/);
  });

  it("decodes oversized keys and values to TOO_LARGE", () => {
    const bigKey = new ByteWriter()
      .u8(1)
      .u8(1)
      .string("k".repeat(MAX_KEY_BYTES + 1))
      .finish();
    expect(() => decodeKvCommand(bigKey)).toThrow(TooLargeError);
    const bigValue = new ByteWriter()
      .u8(1)
      .u8(2)
      .u8(0)
      .string("k")
      .bytes(new Uint8Array(MAX_VALUE_BYTES + 1))
      .finish();
    expect(() => decodeKvCommand(bigValue)).toThrow(TooLargeError);
  });

  it("refuses malformed bytes with INVALID_ARGUMENT", () => {
    const put = encodeKvCommand({ op: "put", key: "key", value: bytes(1, 2) });
    for (let length = 0; length < put.length; length++) {
      expect(() => decodeKvCommand(put.subarray(0, length))).toThrow(InvalidArgumentError);
    }
    const cases = [
      bytes(2, 1, 0, 0, 0, 1, 0x6b), // unknown version
      bytes(1, 9, 0, 0, 0, 1, 0x6b), // unknown op
      bytes(1, 3, 2, 0, 0, 0, 1, 0x6b), // unknown flag
      bytes(1, 4, 0, 0, 0, 1, 0x6b, 3, 0, 0, 0, 0), // unknown expectation
      bytes(1, 1, 0, 0, 0, 1, 0xff), // invalid UTF-8 key
      bytes(1, 1, 0, 0, 0, 0), // empty key
      bytes(1, 1, 0, 0, 0, 1, 0x6b, 0), // trailing byte
    ];
    for (const data of cases) expect(() => decodeKvCommand(data)).toThrow(InvalidArgumentError);
  });

  it("never throws anything but a validation error on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (data) => {
        try {
          decodeKvCommand(data);
        } catch (error) {
          expect(error instanceof InvalidArgumentError || error instanceof TooLargeError).toBe(
            true,
          );
        }
      }),
    );
  });
});
