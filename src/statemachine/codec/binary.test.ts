import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InternalError, InvalidArgumentError } from "../../common/index.js";
import { ByteReader, ByteWriter } from "./binary.js";
import { crc32 } from "../../common/crc32.js";
import { decodeUtf8, encodeUtf8, utf8ByteLength } from "./utf8.js";

describe("ByteWriter and ByteReader", () => {
  it("round-trip every kind of value, big-endian", () => {
    const bytes = new ByteWriter(1)
      .u8(0xab)
      .u16(0x1234)
      .u32(0xdeadbeef)
      .u53(Number.MAX_SAFE_INTEGER)
      .bool(true)
      .bytes(new Uint8Array([1, 2, 3]))
      .string("héllo €𝄞")
      .raw(new Uint8Array([9]))
      .finish();
    expect([...bytes.subarray(0, 7)]).toEqual([0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
    const reader = new ByteReader(bytes, "test");
    expect(reader.u8()).toBe(0xab);
    expect(reader.u16()).toBe(0x1234);
    expect(reader.u32()).toBe(0xdeadbeef);
    expect(reader.u53()).toBe(Number.MAX_SAFE_INTEGER);
    expect(reader.bool()).toBe(true);
    expect([...reader.bytes()]).toEqual([1, 2, 3]);
    expect(reader.string()).toBe("héllo €𝄞");
    expect([...reader.rest()]).toEqual([9]);
    expect(() => reader.expectEnd()).not.toThrow();
  });

  it("round-trips any safe integer as u53", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (value) => {
        expect(new ByteReader(new ByteWriter().u53(value).finish(), "test").u53()).toBe(value);
      }),
    );
  });

  it("throws InvalidArgumentError, never RangeError, on truncated or bad input", () => {
    expect(() => new ByteReader(new Uint8Array(3), "thing").u32()).toThrow(InvalidArgumentError);
    expect(() => new ByteReader(new Uint8Array(3), "thing").u32()).toThrow(
      /malformed thing at byte 0/,
    );
    expect(() => new ByteReader(new Uint8Array([0, 0, 0, 9, 1]), "t").bytes()).toThrow(
      InvalidArgumentError,
    );
    expect(() => new ByteReader(new Uint8Array([2]), "t").bool()).toThrow(InvalidArgumentError);
    const tooBig = new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0]);
    expect(() => new ByteReader(tooBig, "t").u53()).toThrow(/exceeds 2\^53/);
    const badUtf8 = new Uint8Array([0, 0, 0, 1, 0xff]);
    expect(() => new ByteReader(badUtf8, "t").string()).toThrow(InvalidArgumentError);
    expect(() => new ByteReader(new Uint8Array([1]), "t").expectEnd()).toThrow(/1 trailing bytes/);
  });

  it("refuses out-of-range integers as a bug", () => {
    expect(() => new ByteWriter().u8(256)).toThrow(InternalError);
    expect(() => new ByteWriter().u53(-1)).toThrow(InternalError);
    expect(() => new ByteWriter().u53(2 ** 53)).toThrow(InternalError);
  });

  it("copies bytes() out of the input", () => {
    const input = new ByteWriter().bytes(new Uint8Array([7])).finish();
    const copy = new ByteReader(input, "t").bytes();
    input[4] = 8;
    expect(copy[0]).toBe(7);
  });

  it("copies bytes() out of a Buffer input too (whose slice() would be a view)", () => {
    const input = Buffer.from(new ByteWriter().bytes(new Uint8Array([7])).finish());
    const copy = new ByteReader(input, "t").bytes();
    input[4] = 8;
    expect(copy[0]).toBe(7);
    expect(copy.buffer).not.toBe(input.buffer);
  });
});

describe("utf8", () => {
  it("measures UTF-8 length like TextEncoder and rejects lone surrogates", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (text) => {
        expect(utf8ByteLength(text)).toBe(new TextEncoder().encode(text).length);
      }),
    );
    expect(utf8ByteLength("\ud800")).toBeUndefined();
    expect(utf8ByteLength("a\udc00b")).toBeUndefined();
    expect(() => encodeUtf8("\ud800")).toThrow(InvalidArgumentError);
  });

  it("decodes strictly and keeps a leading byte-order mark", () => {
    expect(decodeUtf8(encodeUtf8("\ufeffa"))).toBe("\ufeffa");
    expect(() => decodeUtf8(new Uint8Array([0xc3]))).toThrow(InvalidArgumentError);
  });
});

describe("crc32", () => {
  it("matches the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});
