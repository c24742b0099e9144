import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SortedKeys, compareKeys } from "./sorted-keys.js";

const utf8 = new TextEncoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  }
  return a.length - b.length;
}

describe("compareKeys", () => {
  it("orders by Unicode code point, which is UTF-8 byte order", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(
          Math.sign(compareBytes(utf8.encode(a), utf8.encode(b))),
        );
      }),
    );
    // JavaScript's < disagrees here: U+FFFD is below U+1F600 by code point.
    expect(compareKeys("\ufffd", "😀")).toBeLessThan(0);
    expect("\ufffd" < "😀").toBe(false);
  });
});

describe("SortedKeys", () => {
  it("stays sorted and matches a set under random inserts and removes", () => {
    const operation = fc.record({
      insert: fc.boolean(),
      key: fc.string({ maxLength: 3, unit: fc.constantFrom("a", "b", "é", "😀", "\uffff") }),
    });
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 60 }), (operations) => {
        const keys = new SortedKeys();
        const model = new Set<string>();
        for (const { insert, key } of operations) {
          if (insert) {
            keys.insert(key);
            model.add(key);
          } else {
            keys.remove(key);
            model.delete(key);
          }
        }
        expect([...keys]).toEqual([...model].sort(compareKeys));
        expect(keys.size).toBe(model.size);
        for (const key of model) expect(keys.at(keys.lowerBound(key))).toBe(key);
      }),
    );
  });
});
