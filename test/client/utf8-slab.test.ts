/**
 * The client's slab UTF-8 encoder (`src/client/utf8-slab.ts`) against `TextEncoder`: the same
 * bytes for every kind of text, views that later calls never write over (across slab changes),
 * and long texts outside the slabs.
 */
import { describe, expect, it } from "vitest";
import { MAX_SLAB_TEXT_CHARS, SLAB_BYTES, encodeUtf8 } from "../../src/client/utf8-slab.js";

const reference = new TextEncoder();

describe("encodeUtf8", () => {
  it("gives TextEncoder's bytes for ASCII, multi-byte, astral, lone surrogates and empty text", () => {
    const texts = [
      "",
      "v",
      "héllo wörld",
      "日本語のテキスト",
      "😀 emoji",
      "\ud800 lone",
      "\ufeffbom",
    ];
    for (const text of texts) {
      const bytes = encodeUtf8(text);
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect([...bytes]).toEqual([...reference.encode(text)]);
    }
  });

  it("never writes over bytes it gave before, across many slabs", () => {
    const given: { text: string; bytes: Uint8Array }[] = [];
    // Enough text to fill several slabs, in lengths up to the slab limit, some multi-byte.
    let total = 0;
    for (let i = 0; total < 5 * SLAB_BYTES; i++) {
      const text = (i % 3 === 0 ? "ü" : "a").repeat(1 + ((i * 37) % MAX_SLAB_TEXT_CHARS));
      const bytes = encodeUtf8(text);
      given.push({ text, bytes });
      total += bytes.length;
    }
    for (const { text, bytes } of given) {
      expect(new TextDecoder().decode(bytes)).toBe(text);
    }
    // Several values shared one slab (the point), and none reaches past its own bytes.
    const buffers = new Set(given.map((g) => g.bytes.buffer));
    expect(buffers.size).toBeLessThan(given.length);
    for (const { bytes } of given)
      expect(bytes.byteOffset + bytes.length).toBeLessThanOrEqual(SLAB_BYTES);
  });

  it("encodes a text longer than the slab limit on its own", () => {
    const text = "x".repeat(MAX_SLAB_TEXT_CHARS + 1);
    const bytes = encodeUtf8(text);
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(text.length);
    expect(new TextDecoder().decode(bytes)).toBe(text);
  });
});
