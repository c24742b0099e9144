import { describe, expect, it } from "vitest";
import { SeededRandom } from "./random.js";

describe("SeededRandom", () => {
  it("replays the same sequence from the same seed", () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const seqA = Array.from({ length: 100 }, () => a.int(1000));
    const seqB = Array.from({ length: 100 }, () => b.int(1000));
    expect(seqA).toEqual(seqB);
  });

  it("differs between seeds", () => {
    const a = new SeededRandom(1);
    const b = new SeededRandom(2);
    expect(Array.from({ length: 8 }, () => a.int(1 << 30))).not.toEqual(
      Array.from({ length: 8 }, () => b.int(1 << 30)),
    );
  });

  it("stays in range and covers it", () => {
    const random = new SeededRandom(7);
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const value = random.int(10);
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(10);
      seen.add(value);
    }
    expect(seen.size).toBe(10);
  });
});
