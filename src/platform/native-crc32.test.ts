import * as zlib from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { crc32, useNativeCrc32 } from "../common/crc32.js";
import { SeededRandom } from "../common/random.js";
import { installNativeCrc32 } from "./native-crc32.js";

describe("installNativeCrc32", () => {
  afterEach(() => useNativeCrc32(undefined));

  it("installs zlib.crc32 on this Node and gives the table loop's values, whole and continued", () => {
    const random = new SeededRandom(3);
    const inputs = Array.from({ length: 40 }, () => {
      const data = new Uint8Array(random.int(5000));
      for (let i = 0; i < data.length; i++) data[i] = random.int(256);
      return data;
    });
    const tables = inputs.map((data) => [
      crc32(data),
      crc32(data.subarray(7), crc32(data.subarray(0, 7))),
    ]);
    expect(installNativeCrc32()).toBe(typeof (zlib as { crc32?: unknown }).crc32 === "function");
    expect(
      inputs.map((data) => [crc32(data), crc32(data.subarray(7), crc32(data.subarray(0, 7)))]),
    ).toEqual(tables);
  });
});
