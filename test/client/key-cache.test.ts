/**
 * The binary watch's key cache (`src/client/key-cache.ts`) against `Buffer#toString("utf8")`: the
 * same text for every key, the cached string handed out again for a key seen before, and never
 * the text of another key that shares its slot.
 */
import { describe, expect, it } from "vitest";
import { KEY_CACHE_SLOTS, MAX_CACHED_KEY_BYTES, decodeKey } from "../../src/client/key-cache.js";

/** `text`'s UTF-8 bytes inside other bytes, as a key sits in a frame. */
function framed(text: string): { bytes: Buffer; start: number; length: number } {
  const key = Buffer.from(text, "utf8");
  return {
    bytes: Buffer.concat([Buffer.from([7, 7, 7]), key, Buffer.from([9])]),
    start: 3,
    length: key.length,
  };
}

const decode = (text: string): string => {
  const { bytes, start, length } = framed(text);
  return decodeKey(bytes, start, length);
};

/** The slot of an ASCII key (the cache's FNV-1a), to find keys that share one. */
function slotOf(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "latin1")) hash = Math.imul(hash ^ byte, 0x01000193);
  return (hash >>> 0) & (KEY_CACHE_SLOTS - 1);
}

describe("decodeKey", () => {
  it("gives what Buffer#toString gives, for ASCII, non-ASCII, empty, long and broken keys", () => {
    const keys = [
      "bench-1",
      "",
      "app/héllo",
      "x😀",
      "k".repeat(MAX_CACHED_KEY_BYTES),
      "k".repeat(MAX_CACHED_KEY_BYTES + 1),
    ];
    for (const key of keys) {
      expect(decode(key)).toBe(key);
      expect(decode(key), `${key} again`).toBe(key);
    }
    // Bytes that are not UTF-8 decode as Buffer#toString decodes them (U+FFFD), not as latin1.
    const broken = Buffer.from([0x61, 0xff, 0xc3, 0x28]);
    expect(decodeKey(broken, 0, 4)).toBe(broken.toString("utf8"));
    expect(decodeKey(broken, 0, 4)).toBe(broken.toString("utf8"));
  });

  it("hands out the cached string for a key seen before", () => {
    const first = decode("app/config/a");
    const again = decode("app/config/a");
    expect(again).toBe(first);
    // A key that is not ASCII is decoded afresh each time (and still right).
    expect(decode("app/ü")).toBe("app/ü");
  });

  it("never gives the text of another key in the same slot (same length, same slot)", () => {
    // Two keys of equal length in one slot: only the comparison of their bytes tells them apart.
    const wanted = slotOf("key-0000");
    let twin: string | undefined;
    for (let n = 1; n < 1_000_000 && twin === undefined; n++) {
      const candidate = `key-${String(n).padStart(4, "0")}`;
      if (candidate.length === 8 && slotOf(candidate) === wanted) twin = candidate;
    }
    expect(twin).toBeDefined();
    for (let round = 0; round < 3; round++) {
      expect(decode("key-0000")).toBe("key-0000");
      expect(decode(twin as string)).toBe(twin);
    }
  });
});
