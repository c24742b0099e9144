import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.js";

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
  it("gives the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("equals the bytewise reference for every length around the 8-byte steps", () => {
    let seed = 12345;
    for (let length = 0; length <= 67; length++) {
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        bytes[i] = seed >>> 24;
      }
      expect(crc32(bytes), `length ${length}`).toBe(referenceCrc32(bytes));
      // A view at an odd offset reads the same bytes.
      const shifted = new Uint8Array(length + 3);
      shifted.set(bytes, 3);
      expect(crc32(shifted.subarray(3))).toBe(referenceCrc32(bytes));
    }
  });

  it("continues a checksum: crc32(b, crc32(a)) is the CRC-32 of a followed by b, at every split", () => {
    const bytes = new Uint8Array(41).map((_, i) => (i * 37 + 11) & 0xff);
    const whole = referenceCrc32(bytes);
    for (let split = 0; split <= bytes.length; split++) {
      const first = crc32(bytes.subarray(0, split));
      expect(crc32(bytes.subarray(split), first), `split ${split}`).toBe(whole);
    }
  });
});
