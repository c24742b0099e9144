import { describe, expect, it } from "vitest";
import { Scheduler, SimClock } from "../../src/sim/scheduler.js";

describe("Scheduler", () => {
  it("runs events in (time, insertion) order and advances virtual time", async () => {
    const scheduler = new Scheduler();
    const seen: string[] = [];
    scheduler.schedule(20, () => seen.push(`b@${scheduler.now()}`));
    scheduler.schedule(10, () => seen.push(`a@${scheduler.now()}`));
    scheduler.schedule(20, () => seen.push(`c@${scheduler.now()}`));
    const cancelled = scheduler.schedule(15, () => seen.push("never"));
    cancelled.cancel();
    await scheduler.runUntil(100);
    expect(seen).toEqual(["a@10", "b@20", "c@20"]);
    expect(scheduler.now()).toBe(100);
  });

  it("lets an event's promise continuations finish before the next event", async () => {
    const scheduler = new Scheduler();
    const seen: string[] = [];
    scheduler.schedule(1, () => {
      void (async () => {
        await Promise.resolve();
        await Promise.resolve();
        seen.push("continuation");
      })();
    });
    scheduler.schedule(1, () => seen.push("next event"));
    await scheduler.runUntil(10);
    expect(seen).toEqual(["continuation", "next event"]);
  });

  it("stops when the predicate holds", async () => {
    const scheduler = new Scheduler();
    let count = 0;
    const tick = (): void => {
      count++;
      scheduler.schedule(5, tick);
    };
    scheduler.schedule(5, tick);
    await scheduler.runUntil(() => count === 3);
    expect(scheduler.now()).toBe(15);
  });
});

describe("SimClock", () => {
  it("holds timers while paused and fires them on resume; drops them when killed", async () => {
    const scheduler = new Scheduler();
    const clock = new SimClock(scheduler);
    const seen: string[] = [];
    clock.setTimer(10, () => seen.push(`t1@${scheduler.now()}`));
    clock.pause();
    await scheduler.runUntil(50);
    expect(seen).toEqual([]);
    clock.resume();
    await scheduler.runUntil(60);
    expect(seen).toEqual(["t1@50"]);
    clock.setTimer(10, () => seen.push("after kill"));
    clock.kill();
    await scheduler.runUntil(100);
    expect(seen).toEqual(["t1@50"]);
  });
});
