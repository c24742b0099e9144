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
  it("stays sorted and matches a sorted array under random inserts, removes and reloads, whatever the block size", () => {
    const operation = fc.record({
      kind: fc.constantFrom("insert", "insert", "remove", "reload"),
      key: fc.string({ maxLength: 3, unit: fc.constantFrom("a", "b", "é", "😀", "\uffff") }),
    });
    fc.assert(
      fc.property(
        fc.array(operation, { maxLength: 200 }),
        fc.constantFrom(2, 3, 4, 8, 1024),
        (operations, maxBlockKeys) => {
          const keys = new SortedKeys(maxBlockKeys);
          const model = new Set<string>();
          for (const { kind, key } of operations) {
            if (kind === "insert") {
              keys.insert(key);
              model.add(key);
            } else if (kind === "remove") {
              keys.remove(key);
              model.delete(key);
            } else {
              keys.replaceWithSorted([...model].sort(compareKeys));
            }
          }
          const sorted = [...model].sort(compareKeys);
          expect([...keys]).toEqual(sorted);
          expect(keys.toArray()).toEqual(sorted);
          expect(keys.size).toBe(sorted.length);
          sorted.forEach((key, position) => {
            expect(keys.at(position)).toBe(key);
            expect(keys.lowerBound(key)).toBe(position);
          });
          expect(keys.at(sorted.length)).toBeUndefined();
          expect(keys.at(-1)).toBeUndefined();
          // Keys between and around the present ones land where a sorted array puts them.
          for (const probe of ["", "a", "aa", "b", "é", "\uffff", "😀", "😀😀😀😀"]) {
            expect(keys.lowerBound(probe)).toBe(
              sorted.filter((key) => compareKeys(key, probe) < 0).length,
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
