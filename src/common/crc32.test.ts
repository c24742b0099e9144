import { afterEach, describe, expect, it } from "vitest";
import { crc32, useNativeCrc32 } from "./crc32.js";
import { SeededRandom } from "./random.js";

/** The textbook bytewise CRC-32, the reference the sliced one must equal. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe("crc32 (slicing-by-8)", () => {
  afterEach(() => useNativeCrc32(undefined));

  it("gives the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("equals the bytewise reference for every length around the 8-byte steps", () => {
    const random = new SeededRandom(12345);
    for (let length = 0; length <= 67; length++) {
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) bytes[i] = random.int(256);
      expect(crc32(bytes), `length ${length}`).toBe(referenceCrc32(bytes));
      // A view at an odd offset reads the same bytes.
      const shifted = new Uint8Array(length + 3);
      shifted.set(bytes, 3);
      expect(crc32(shifted.subarray(3))).toBe(referenceCrc32(bytes));
    }
  });

  it("continues a checksum: crc32(b, crc32(a)) is the CRC-32 of a followed by b, at every split", () => {
    const random = new SeededRandom(7);
    for (let round = 0; round < 200; round++) {
      const data = new Uint8Array(random.int(300));
      for (let i = 0; i < data.length; i++) data[i] = random.int(256);
      const split = random.int(data.length + 1);
      expect(crc32(data.subarray(split), crc32(data.subarray(0, split)))).toBe(
        referenceCrc32(data),
      );
    }
  });

  it("hands large inputs to an installed native implementation and small ones to the tables", () => {
    const seen: number[] = [];
    useNativeCrc32((data, previous) => {
      seen.push(data.length);
      return (referenceCrc32(data) ^ previous) >>> 0;
    });
    const large = new Uint8Array(4096).map((_, i) => i & 0xff);
    expect(crc32(large)).toBe(referenceCrc32(large));
    expect(crc32(new Uint8Array(12))).toBe(referenceCrc32(new Uint8Array(12)));
    expect(seen).toEqual([4096]);
  });
});
