import type { EventLoopUtilization } from "node:perf_hooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LoopDelaySampler } from "./loop-delay-sampler.js";

/** A utilization source whose periods are busy or idle as the test says. */
function scriptedUtilization(): {
  busy: { now: boolean };
  utilization: (previous?: EventLoopUtilization) => EventLoopUtilization;
} {
  const busy = { now: false };
  return {
    busy,
    utilization: (previous) => ({
      idle: 0,
      active: 0,
      utilization: previous !== undefined && busy.now ? 0.5 : 0.001,
    }),
  };
}

describe("LoopDelaySampler", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("wakes every 20 ms while the loop works and backs off to every 250 ms while it idles", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { busy, utilization } = scriptedUtilization();
    const sampler = new LoopDelaySampler({ utilization });
    sampler.start();

    // Idle: 20, 40, 80, 160, then 250 ms apart.
    const intervals: number[] = [];
    for (let i = 0; i < 6; i++) {
      intervals.push(sampler.intervalMs);
      vi.advanceTimersByTime(sampler.intervalMs);
    }
    expect(intervals).toEqual([20, 40, 80, 160, 250, 250]);
    // Ten idle seconds cost 40 wake-ups, not the 500 of a fixed 20 ms.
    const idleStart = sampler.samples;
    vi.advanceTimersByTime(10_000);
    expect(sampler.samples - idleStart).toBe(40);

    // Work resumes: the next sample sees a busy period and the ones after it are 20 ms apart.
    busy.now = true;
    vi.advanceTimersByTime(250);
    expect(sampler.intervalMs).toBe(20);
    const busyStart = sampler.samples;
    vi.advanceTimersByTime(1000);
    expect(sampler.samples - busyStart).toBe(50);

    // Idle again: back off again.
    busy.now = false;
    vi.advanceTimersByTime(20 + 40 + 80 + 160);
    expect(sampler.intervalMs).toBe(250);
    sampler.stop();
  });

  it("reports how late its samples ran since the last reset, and stops waking when stopped", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { busy, utilization } = scriptedUtilization();
    busy.now = true;
    const sampler = new LoopDelaySampler({ utilization });
    expect(sampler.maxSeconds).toBe(0);
    sampler.start();
    vi.advanceTimersByTime(100);
    expect(sampler.count).toBe(5);
    // Fake timers run on time: nothing was late (recorded as the histogram's floor, 1 ns).
    expect(sampler.maxSeconds).toBeLessThan(1e-6);
    sampler.reset();
    expect(sampler.count).toBe(0);
    expect(sampler.p99Seconds).toBe(0);
    sampler.stop();
    const samples = sampler.samples;
    vi.advanceTimersByTime(1000);
    expect(sampler.samples).toBe(samples);
  });
});
