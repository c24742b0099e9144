import { describe, expect, it } from "vitest";
import { SystemClock } from "./clock.js";

describe("SystemClock", () => {
  it("counts from the Unix epoch", () => {
    // Between 2020 and 2100: an epoch time, not time since process start.
    const now = new SystemClock().now();
    expect(now).toBeGreaterThan(Date.UTC(2020, 0, 1));
    expect(now).toBeLessThan(Date.UTC(2100, 0, 1));
  });

  it("fires a timer and never goes backwards", async () => {
    const clock = new SystemClock();
    const before = clock.now();
    await new Promise<void>((resolve) => clock.setTimer(5, resolve));
    expect(clock.now()).toBeGreaterThanOrEqual(before);
  });

  it("stands still while the underlying reading goes back, and resumes when it passes", () => {
    let reading = 10_000;
    const clock = new SystemClock(() => reading);
    const start = clock.now();
    reading = 3_000; // a 7 s jump back
    expect(clock.now()).toBe(start);
    reading = 9_000;
    expect(clock.now()).toBe(start);
    reading = 10_500;
    expect(clock.now()).toBe(start + 500);
  });

  it("does not fire a cancelled timer", async () => {
    const clock = new SystemClock();
    let fired = false;
    clock.setTimer(1, () => (fired = true)).cancel();
    await new Promise<void>((resolve) => clock.setTimer(20, resolve));
    expect(fired).toBe(false);
  });
});
