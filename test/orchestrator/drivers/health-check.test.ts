/**
 * The health check's counting and its loop, on a manual clock with probes the test answers by
 * hand: failures up to the threshold change nothing, the threshold makes the guest unhealthy once,
 * one success makes it healthy again; a probe that hangs fails at its timeout; probes start an
 * interval apart; nothing is probed or reported after the watch is stopped.
 */
import { describe, expect, it } from "vitest";
import {
  HealthTally,
  watchHealth,
  type HealthChange,
} from "../../../src/orchestrator/drivers/health-check.js";
import { ManualClock } from "./helpers.js";

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("HealthTally", () => {
  it("turns unhealthy at the threshold of failures in a row, once, and healthy after one success", () => {
    const tally = new HealthTally(3);
    expect(tally.failure("refused")).toBeUndefined();
    expect(tally.failure("refused")).toBeUndefined();
    expect(tally.failure("refused")).toEqual({
      healthy: false,
      reason: "health check failed 3 times in a row: refused",
    });
    expect(tally.healthy).toBe(false);
    // Further failures are no news.
    expect(tally.failure("refused")).toBeUndefined();
    expect(tally.success()).toEqual({ healthy: true, reason: "" });
    expect(tally.success()).toBeUndefined();
    expect(tally.healthy).toBe(true);
  });

  it("starts counting afresh after a success: failures must be in a row", () => {
    const tally = new HealthTally(2);
    expect(tally.failure("a")).toBeUndefined();
    expect(tally.success()).toBeUndefined();
    expect(tally.failure("b")).toBeUndefined();
    expect(tally.failure("c")?.reason).toBe("health check failed 2 times in a row: c");
  });

  it("with a threshold of one, says so", () => {
    expect(new HealthTally(1).failure("x")?.reason).toBe("health check failed once: x");
    expect(() => new HealthTally(0)).toThrow(RangeError);
  });
});

/** Probes that wait for the test's answer. */
class ManualProbes {
  readonly calls: { signal: AbortSignal; pass: () => void; fail: (reason: string) => void }[] = [];

  readonly probe = (signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) =>
      this.calls.push({ signal, pass: resolve, fail: (reason) => reject(new Error(reason)) }),
    );

  last(): ManualProbes["calls"][number] {
    const call = this.calls.at(-1);
    if (call === undefined) throw new Error("no probe was started");
    return call;
  }
}

describe("watchHealth", () => {
  const check = { intervalMs: 1000, timeoutMs: 300, failureThreshold: 2 };

  function start(): { clock: ManualClock; probes: ManualProbes; changes: HealthChange[] } & {
    watch: ReturnType<typeof watchHealth>;
  } {
    const clock = new ManualClock();
    const probes = new ManualProbes();
    const changes: HealthChange[] = [];
    const watch = watchHealth({
      clock,
      check,
      probe: probes.probe,
      onChange: (change) => changes.push(change),
    });
    return { clock, probes, changes, watch };
  }

  it("probes at once and then an interval after each probe's start; failures → unhealthy → recovery", async () => {
    const { clock, probes, changes, watch } = start();
    expect(probes.calls).toHaveLength(1);
    clock.advance(100);
    probes.last().fail("connection refused");
    await settle();
    // The next probe is due 1000 ms after the first one started, not after it ended.
    clock.advance(899);
    await settle();
    expect(probes.calls).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(probes.calls).toHaveLength(2);
    expect(changes).toEqual([]);
    probes.last().fail("connection refused");
    await settle();
    expect(changes).toEqual([
      { healthy: false, reason: "health check failed 2 times in a row: connection refused" },
    ]);
    clock.advance(1000);
    await settle();
    probes.last().fail("connection refused");
    await settle();
    expect(changes).toHaveLength(1);
    clock.advance(1000);
    await settle();
    probes.last().pass();
    await settle();
    expect(changes.at(-1)).toEqual({ healthy: true, reason: "" });
    expect(changes).toHaveLength(2);
    watch.stop();
    await watch.done;
  });

  it("fails a probe that does not answer within the timeout, and aborts its signal", async () => {
    const { clock, probes, changes, watch } = start();
    const first = probes.last();
    clock.advance(300);
    await settle();
    expect(first.signal.aborted).toBe(true);
    clock.advance(700);
    await settle();
    const second = probes.last();
    expect(second).not.toBe(first);
    clock.advance(300);
    await settle();
    expect(changes).toEqual([
      { healthy: false, reason: "health check failed 2 times in a row: timed out after 300 ms" },
    ]);
    // An answer after the timeout changes nothing: the probe already counted as failed.
    second.pass();
    await settle();
    expect(changes).toHaveLength(1);
    watch.stop();
    await watch.done;
  });

  it("after stop, starts no probe and reports no change, even for a probe in flight", async () => {
    const { clock, probes, changes, watch } = start();
    probes.last().fail("refused");
    await settle();
    clock.advance(1000);
    await settle();
    const inFlight = probes.last();
    watch.stop();
    expect(inFlight.signal.aborted).toBe(true);
    inFlight.fail("refused");
    await watch.done;
    clock.advance(10_000);
    await settle();
    expect(probes.calls).toHaveLength(2);
    expect(changes).toEqual([]);
    expect(clock.pendingDelays()).toEqual([]);
  });
});
