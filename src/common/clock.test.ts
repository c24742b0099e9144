import { describe, expect, it } from "vitest";
import { alignedDelayMs } from "./clock.js";

describe("alignedDelayMs", () => {
  it("runs checks of periods that divide one another at the same instants", () => {
    // Three checks started at different times, of 250 ms, 500 ms and 1 s.
    const runs = (startMs: number, periodMs: number, untilMs: number): number[] => {
      const at: number[] = [];
      for (let t = startMs + alignedDelayMs(startMs, periodMs); t <= untilMs;) {
        at.push(t);
        t += alignedDelayMs(t, periodMs);
      }
      return at;
    };
    const quarter = runs(10_013, 250, 20_000);
    const half = runs(10_377, 500, 20_000);
    const second = runs(10_911, 1000, 20_000);
    // Every run of the longer periods falls on a run of the shorter ones: no wake-up of its own.
    for (const t of [...half, ...second]) expect(quarter).toContain(t);
    expect(second).toEqual([
      12_000, 13_000, 14_000, 15_000, 16_000, 17_000, 18_000, 19_000, 20_000,
    ]);
    // The period holds on average.
    expect(quarter.length).toBeGreaterThanOrEqual(38);
  });

  it("never runs a check twice within half a period, however early or late its timer ran", () => {
    expect(alignedDelayMs(999.4, 1000)).toBeCloseTo(1000.6); // ran 0.6 ms early
    expect(alignedDelayMs(1000, 1000)).toBe(1000);
    expect(alignedDelayMs(1000.5, 1000)).toBeCloseTo(999.5); // ran 0.5 ms late
    expect(alignedDelayMs(1700, 1000)).toBe(1300); // ran 700 ms late: the next grid point is too near
    expect(alignedDelayMs(1400, 1000)).toBe(600);
    for (let now = 0; now < 3000; now += 7.3) {
      const delay = alignedDelayMs(now, 1000);
      expect(delay).toBeGreaterThanOrEqual(500);
      expect(delay).toBeLessThan(1500);
      expect((now + delay) % 1000).toBeCloseTo(0);
    }
  });
});
