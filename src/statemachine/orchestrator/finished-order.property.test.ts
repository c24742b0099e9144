/**
 * Property tests of the finished-task queue against a `Set` (whose insertion order is the
 * reference): over random adds, deletes of any id (not only the oldest) and evictions of the
 * oldest, long enough to cross several compactions, the order, size and oldest id agree.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FinishedOrder } from "./finished-order.js";

type Step =
  | { readonly kind: "add"; readonly id: number }
  | { readonly kind: "delete"; readonly id: number }
  | { readonly kind: "evict"; readonly count: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("add" as const), id: fc.nat(4000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), id: fc.nat(4000) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("evict" as const),
      count: fc.integer({ min: 1, max: 40 }),
    }),
  },
);

describe("FinishedOrder", () => {
  it("keeps the order, size and oldest id of a Set through adds, deletes and evictions", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 3000 }), (steps) => {
        const order = new FinishedOrder();
        const reference = new Set<string>();
        for (const s of steps) {
          if (s.kind === "add") {
            order.add(`t${s.id}`);
            reference.add(`t${s.id}`);
          } else if (s.kind === "delete") {
            expect(order.delete(`t${s.id}`)).toBe(reference.delete(`t${s.id}`));
          } else {
            for (let i = 0; i < s.count; i++) {
              const oldest = reference.values().next();
              expect(order.oldest()).toBe(oldest.done === true ? undefined : oldest.value);
              if (oldest.done === true) break;
              order.delete(oldest.value);
              reference.delete(oldest.value);
            }
          }
          expect(order.size).toBe(reference.size);
        }
        expect([...order.values()]).toEqual([...reference]);
        for (const id of reference) expect(order.has(id)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("stays a queue across compactions when used as one", () => {
    const order = new FinishedOrder();
    for (let i = 0; i < 10_000; i++) order.add(`t${i}`);
    // 25,000 more, each evicting the oldest: many compactions of the deleted slots.
    for (let i = 10_000; i < 35_000; i++) {
      order.add(`t${i}`);
      expect(order.oldest()).toBe(`t${i - 10_000}`);
      order.delete(`t${i - 10_000}`);
    }
    expect(order.size).toBe(10_000);
    const ids = [...order.values()];
    expect(ids[0]).toBe("t25000");
    expect(ids.at(-1)).toBe("t34999");
    // Re-adding a deleted id makes it the newest; re-adding a present one changes nothing.
    order.add("t0");
    order.add("t25001");
    expect([...order.values()].slice(-2)).toEqual(["t34999", "t0"]);
    expect(order.oldest()).toBe("t25000");
  });

  it("is empty after deleting everything", () => {
    const order = new FinishedOrder();
    for (let i = 0; i < 3000; i++) order.add(`t${i}`);
    for (let i = 2999; i >= 0; i--) expect(order.delete(`t${i}`)).toBe(true);
    expect(order.size).toBe(0);
    expect(order.oldest()).toBeUndefined();
    expect([...order.values()]).toEqual([]);
    expect(order.delete("t1")).toBe(false);
  });
});
