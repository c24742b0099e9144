/**
 * The liveness rule of an outbound peer link, on a manual clock: a link that wrote and heard
 * nothing for the silence limit is declared dead once; hearing anything clears it; a link that
 * writes nothing is never judged; a socket that does not drain in time is dead too.
 */
import { describe, expect, it } from "vitest";
import { LinkLiveness } from "../../src/transport/link-liveness.js";
import { silenceLimitForElectionTimeout } from "../../src/transport/limits.js";
import { ManualClock } from "../node/fakes.js";

function setup() {
  const clock = new ManualClock();
  const deaths: { reason: string; forMs: number; atMs: number }[] = [];
  const liveness = new LinkLiveness({
    clock,
    silenceLimitMs: 2000,
    drainTimeoutMs: 1500,
    onDead: (reason, forMs) => deaths.push({ reason, forMs, atMs: clock.now() }),
  });
  return { clock, deaths, liveness };
}

describe("LinkLiveness", () => {
  it("declares a link dead once it wrote and heard nothing for the silence limit", async () => {
    const { clock, deaths, liveness } = setup();
    await clock.advance(100);
    liveness.wrote();
    // Heartbeats keep being written every 100 ms, unanswered: silence counts from the first.
    for (let i = 0; i < 19; i++) {
      await clock.advance(100);
      liveness.wrote();
    }
    expect(deaths).toEqual([]);
    await clock.advance(100);
    expect(deaths).toEqual([{ reason: "silent", forMs: 2000, atMs: 2100 }]);
    await clock.advance(10_000);
    expect(deaths).toHaveLength(1);
  });

  it("never declares dead a link whose writes are answered", async () => {
    const { clock, deaths, liveness } = setup();
    for (let i = 0; i < 100; i++) {
      liveness.wrote();
      await clock.advance(5);
      liveness.heard();
      await clock.advance(95);
    }
    expect(deaths).toEqual([]);
    expect(liveness.lastHeardMs).toBe(9905);
  });

  it("measures silence from the first write after the last thing heard, not from an older timer", async () => {
    const { clock, deaths, liveness } = setup();
    liveness.wrote();
    await clock.advance(1500);
    liveness.heard();
    await clock.advance(100);
    liveness.wrote(); // at 1600: silent from here
    await clock.advance(1900); // 3500: the first timer fired at 2000 and re-armed
    expect(deaths).toEqual([]);
    await clock.advance(100);
    expect(deaths).toEqual([{ reason: "silent", forMs: 2000, atMs: 3600 }]);
  });

  it("never judges a link that writes nothing", async () => {
    const { clock, deaths } = setup();
    await clock.advance(60_000);
    expect(deaths).toEqual([]);
  });

  it("forgets what was unanswered when the connection is reset", async () => {
    const { clock, deaths, liveness } = setup();
    liveness.wrote();
    await clock.advance(1000);
    liveness.reset();
    await clock.advance(5000);
    expect(deaths).toEqual([]);
    liveness.wrote();
    await clock.advance(2000);
    expect(deaths).toEqual([{ reason: "silent", forMs: 2000, atMs: 8000 }]);
  });

  it("declares a link dead when its socket does not drain in time, and not when it does", async () => {
    const { clock, deaths, liveness } = setup();
    liveness.blocked();
    await clock.advance(1000);
    liveness.drained();
    await clock.advance(5000);
    expect(deaths).toEqual([]);
    liveness.blocked();
    liveness.blocked(); // one timer per blocked period
    await clock.advance(1500);
    expect(deaths).toEqual([{ reason: "undrained", forMs: 1500, atMs: 7500 }]);
  });
});

describe("silenceLimitForElectionTimeout", () => {
  it("is twice the election timeout, with a floor", () => {
    expect(silenceLimitForElectionTimeout(1000)).toBe(2000);
    expect(silenceLimitForElectionTimeout(100)).toBe(1000);
  });
});
