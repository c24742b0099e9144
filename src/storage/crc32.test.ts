import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../common/random.js";
import { crc32 } from "./crc32.js";

describe("crc32", () => {
  it("matches the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("matches zlib.crc32 on random inputs, whole and continued", () => {
    const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
    const random = new SeededRandom(7);
    for (let round = 0; round < 200; round++) {
      const data = new Uint8Array(random.int(300));
      for (let i = 0; i < data.length; i++) data[i] = random.int(256);
      const split = random.int(data.length + 1);
      const whole = crc32(data);
      expect(crc32(data.subarray(split), crc32(data.subarray(0, split)))).toBe(whole);
      if (native !== undefined) expect(whole).toBe(native(data));
    }
  });
});
