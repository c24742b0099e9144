import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InternalError, InvalidArgumentError } from "../../common/errors.js";
import { Inflights } from "./inflights.js";

describe("Inflights", () => {
  it("fills up by count", () => {
    const inflights = new Inflights(3, 0);
    inflights.add(1, 10);
    inflights.add(2, 10);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 10);
    expect(inflights.full()).toBe(true);
    expect(inflights.count).toBe(3);
    expect(inflights.bytes).toBe(30);
    expect(() => inflights.add(4, 10)).toThrow(InternalError);
  });

  it("fills up by bytes, counting the message that crosses the limit", () => {
    const inflights = new Inflights(10, 100);
    inflights.add(1, 60);
    expect(inflights.full()).toBe(false);
    inflights.add(2, 50); // 110 >= 100: allowed, but now full
    expect(inflights.full()).toBe(true);
    expect(inflights.count).toBe(2);
    inflights.freeLE(1);
    expect(inflights.bytes).toBe(50);
    expect(inflights.full()).toBe(false);
  });

  it("is full exactly at the byte limit", () => {
    const inflights = new Inflights(10, 100);
    inflights.add(1, 100);
    expect(inflights.full()).toBe(true);
  });

  it("ignores bytes when maxBytes is 0", () => {
    const inflights = new Inflights(2, 0);
    inflights.add(1, Number.MAX_SAFE_INTEGER);
    expect(inflights.full()).toBe(false);
  });

  it("frees every message with lastIndex <= index, and nothing else", () => {
    const inflights = new Inflights(10, 0);
    for (const index of [3, 5, 8, 13]) inflights.add(index, index);
    inflights.freeLE(2);
    expect(inflights.count).toBe(4);
    inflights.freeLE(7); // frees 3 and 5
    expect(inflights.lastIndexesInFlight()).toEqual([8, 13]);
    expect(inflights.bytes).toBe(21);
    inflights.freeLE(100);
    expect(inflights.count).toBe(0);
    expect(inflights.bytes).toBe(0);
    inflights.freeLE(200); // on empty: no-op
    expect(inflights.count).toBe(0);
  });

  it("wraps around the ring", () => {
    const inflights = new Inflights(4, 0);
    for (let i = 1; i <= 4; i++) inflights.add(i, 1);
    inflights.freeLE(2); // start moves to slot 2
    inflights.add(5, 1); // goes to slot 0
    inflights.add(6, 1); // goes to slot 1
    expect(inflights.full()).toBe(true);
    expect(inflights.lastIndexesInFlight()).toEqual([3, 4, 5, 6]);
    inflights.freeLE(5); // crosses the end of the buffer
    expect(inflights.lastIndexesInFlight()).toEqual([6]);
    expect(inflights.bytes).toBe(1);
    inflights.add(7, 2);
    inflights.add(8, 3);
    inflights.add(9, 4);
    expect(inflights.full()).toBe(true);
    expect(inflights.lastIndexesInFlight()).toEqual([6, 7, 8, 9]);
    expect(inflights.bytes).toBe(10);
  });

  it("rejects an index that does not increase", () => {
    const inflights = new Inflights(4, 0);
    inflights.add(5, 1);
    expect(() => inflights.add(5, 1)).toThrow(InternalError);
    expect(() => inflights.add(4, 1)).toThrow(InternalError);
  });

  it("reset empties the window", () => {
    const inflights = new Inflights(2, 0);
    inflights.add(1, 5);
    inflights.add(2, 5);
    inflights.reset();
    expect(inflights.count).toBe(0);
    expect(inflights.bytes).toBe(0);
    expect(inflights.full()).toBe(false);
    inflights.add(1, 1); // indexes may restart after a reset
    expect(inflights.lastIndexesInFlight()).toEqual([1]);
  });

  it("clone is independent of the original", () => {
    const original = new Inflights(3, 0);
    original.add(1, 1);
    original.add(2, 1);
    const copy = original.clone();
    copy.freeLE(1);
    copy.add(3, 1);
    expect(original.lastIndexesInFlight()).toEqual([1, 2]);
    expect(copy.lastIndexesInFlight()).toEqual([2, 3]);
  });

  it("refuses a capacity below 1 or negative maxBytes", () => {
    expect(() => new Inflights(0, 0)).toThrow(InvalidArgumentError);
    expect(() => new Inflights(1.5, 0)).toThrow(InvalidArgumentError);
    expect(() => new Inflights(1, -1)).toThrow(InvalidArgumentError);
  });

  it("behaves like a plain queue under random adds and frees", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("add" as const),
        gap: fc.integer({ min: 1, max: 3 }),
        bytes: fc.integer({ min: 0, max: 40 }),
      }),
      fc.record({ kind: fc.constant("free" as const), back: fc.integer({ min: -2, max: 6 }) }),
      fc.record({ kind: fc.constant("reset" as const) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(op, { maxLength: 60 }),
        (capacity, maxBytes, ops) => {
          const inflights = new Inflights(capacity, maxBytes);
          let model: { index: number; bytes: number }[] = [];
          let last = 0;
          for (const o of ops) {
            if (o.kind === "add") {
              const modelBytes = model.reduce((sum, m) => sum + m.bytes, 0);
              const full = model.length === capacity || (maxBytes > 0 && modelBytes >= maxBytes);
              expect(inflights.full()).toBe(full);
              if (full) continue;
              last += o.gap;
              inflights.add(last, o.bytes);
              model.push({ index: last, bytes: o.bytes });
            } else if (o.kind === "free") {
              const to = last - o.back;
              inflights.freeLE(to);
              model = model.filter((m) => m.index > to);
            } else {
              inflights.reset();
              model = [];
            }
            expect(inflights.lastIndexesInFlight()).toEqual(model.map((m) => m.index));
            expect(inflights.count).toBe(model.length);
            expect(inflights.bytes).toBe(model.reduce((sum, m) => sum + m.bytes, 0));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
