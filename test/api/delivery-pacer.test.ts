/**
 * The pacing of event-stream wake-ups (`src/api/events/delivery-pacer.ts`) against a stand-in
 * feed, on fake timers: a quiet feed's first burst wakes the streams at once, bursts within the
 * interval after a wake-up are gathered into one later wake-up, the interval stretches with the
 * number of streams (bounded), and the last unsubscribe lets go of the feed and of its timer.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ChangeFeed } from "../../src/api/events/change-feed.js";
import {
  MAX_DELIVERY_INTERVAL_MS,
  STREAM_WRITES_PER_SECOND,
  pacedIntervalMs,
  subscribePaced,
} from "../../src/api/events/delivery-pacer.js";

/** A feed that only hands out its listeners; `burst()` is a burst of new records. */
function standInFeed() {
  const listeners = new Set<() => void>();
  const feed = {
    subscribe(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  } as unknown as ChangeFeed;
  return {
    feed,
    listeners,
    burst: () => {
      for (const listener of [...listeners]) listener();
    },
  };
}

describe("delivery pacing of a feed's streams", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("wakes at once after a quiet spell, then at most once per interval while bursts keep coming", () => {
    const { feed, burst } = standInFeed();
    const woken: number[] = [];
    subscribePaced(feed, 10, () => woken.push(performance.now()));
    const start = performance.now();
    burst();
    expect(woken).toEqual([start]);
    // Three bursts within the interval: one wake-up, when it has passed.
    vi.advanceTimersByTime(2);
    burst();
    vi.advanceTimersByTime(3);
    burst();
    burst();
    expect(woken).toHaveLength(1);
    vi.advanceTimersByTime(5);
    expect(woken).toEqual([start, start + 10]);
    // Nothing new: no wake-up.
    vi.advanceTimersByTime(50);
    expect(woken).toHaveLength(2);
    // Quiet for longer than the interval: at once again.
    burst();
    expect(woken).toEqual([start, start + 10, start + 60]);
  });

  it("wakes every stream of the feed in the same call, and lets go of the feed after the last one", () => {
    const { feed, listeners, burst } = standInFeed();
    const woken: string[] = [];
    const stopA = subscribePaced(feed, 10, () => woken.push("a"));
    const stopB = subscribePaced(feed, 10, () => woken.push("b"));
    // One subscription to the feed serves both streams.
    expect(listeners.size).toBe(1);
    burst();
    expect(woken).toEqual(["a", "b"]);
    burst();
    stopA();
    vi.advanceTimersByTime(10);
    expect(woken).toEqual(["a", "b", "b"]);
    burst();
    stopB();
    expect(listeners.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("with an interval of 0, wakes after every burst (the feed's own notification)", () => {
    const { feed, burst } = standInFeed();
    let woken = 0;
    subscribePaced(feed, 0, () => woken++);
    burst();
    burst();
    expect(woken).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stretches the interval with the streams, so their writes per second stay bounded, up to a cap", () => {
    // The interval each stream count gets: the floor while the budget allows it.
    const streamsAtFloor = (10 * STREAM_WRITES_PER_SECOND) / 1000;
    expect(pacedIntervalMs(10, 1)).toBe(10);
    expect(pacedIntervalMs(10, streamsAtFloor)).toBe(10);
    expect(pacedIntervalMs(10, 2 * streamsAtFloor)).toBe(20);
    expect(pacedIntervalMs(10, 1_000_000)).toBe(MAX_DELIVERY_INTERVAL_MS);
    // A floor above the cap is kept.
    expect(pacedIntervalMs(2 * MAX_DELIVERY_INTERVAL_MS, 1)).toBe(2 * MAX_DELIVERY_INTERVAL_MS);

    const { feed, burst } = standInFeed();
    const streams = 3 * streamsAtFloor;
    const intervalMs = pacedIntervalMs(10, streams);
    expect(intervalMs).toBe(30);
    const woken: number[] = [];
    const stops = Array.from({ length: streams }, (_, i) =>
      subscribePaced(feed, 10, () => {
        if (i === 0) woken.push(performance.now());
      }),
    );
    const start = performance.now();
    // A quiet feed: at once, whatever the number of streams.
    burst();
    // Bursts every 5 ms until 85 ms: one wake-up per stretched interval.
    for (let t = 5; t < 3 * intervalMs; t += 5) {
      vi.advanceTimersByTime(5);
      burst();
    }
    vi.advanceTimersByTime(intervalMs);
    expect(woken).toEqual([0, 1, 2, 3].map((k) => start + k * intervalMs));
    // One stream left (at 115 ms): back to the floor interval.
    for (const stop of stops.slice(1)) stop();
    vi.advanceTimersByTime(100);
    burst();
    vi.advanceTimersByTime(2);
    burst();
    vi.advanceTimersByTime(10);
    expect(woken.slice(-2)).toEqual([start + 215, start + 225]);
  });
});
