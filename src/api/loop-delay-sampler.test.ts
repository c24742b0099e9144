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

  it("wakes every 20 ms while the loop works, and on the 250 ms grid of the node's other checks while it idles", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { busy, utilization } = scriptedUtilization();
    // The grid's clock: the fake one, from 37 ms past a grid point.
    const now = (): number => performance.now() + 1037;
    const sampler = new LoopDelaySampler({ utilization, now });
    const sampledAt: number[] = [];
    const sample = (ms: number): void => {
      vi.advanceTimersByTime(ms);
      sampledAt.push(now());
    };
    sampler.start();

    // Idle: the first sample after 20 ms, then on the 250 ms grid (never within 125 ms).
    sample(20);
    expect(sampler.intervalMs).toBe(250 - 57);
    for (let i = 0; i < 3; i++) {
      sample(sampler.intervalMs);
      expect(now() % 250).toBe(0);
    }
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

    // Idle again: back on the grid.
    busy.now = false;
    sample(20);
    sample(sampler.intervalMs);
    expect(now() % 250).toBe(0);
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
