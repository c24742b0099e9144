import { describe, expect, it } from "vitest";
import { valueFromJson } from "../../src/api/schema/values.js";

describe("valueFromJson", () => {
  it("gives a value's UTF-8 bytes as a plain Uint8Array, as TextEncoder does (lone surrogates too)", () => {
    for (const text of ["", "v".repeat(1024), "ключ ☃ 𝄞", "lone \ud800 surrogate"]) {
      const bytes = valueFromJson({ value: text });
      expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
      expect(bytes).toEqual(new TextEncoder().encode(text));
    }
  });

  it("gives base64's bytes, and refuses malformed base64 or both forms", () => {
    const bytes = valueFromJson({ valueBase64: Buffer.from([0, 1, 255]).toString("base64") });
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    expect(bytes).toEqual(new Uint8Array([0, 1, 255]));
    expect(() => valueFromJson({ valueBase64: "abc" })).toThrow(/not valid standard base64/);
    expect(() => valueFromJson({ value: "a", valueBase64: "YQ==" })).toThrow(/exactly one/);
  });
});
