import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { CancelledError, TimeoutError } from "../../src/common/errors.js";
import { Operation } from "../../src/node/operation.js";
import { ManualClock } from "./fakes.js";

function operation(clock: ManualClock, signal?: AbortSignal): Operation<number> {
  return new Operation<number>({
    clock,
    timeoutMs: 100,
    signal,
    what: "proposal",
    onSettle: () => undefined,
  });
}

describe("Operation.whenSettled", () => {
  it("runs its callback once, as the operation resolves, times out or is cancelled", async () => {
    const clock = new ManualClock();
    const signal = new AbortController();
    const resolved = operation(clock);
    const timedOut = operation(clock);
    const cancelled = operation(clock, signal.signal);
    const runs: string[] = [];
    resolved.whenSettled(() => runs.push("resolved"));
    timedOut.whenSettled(() => runs.push("timed out"));
    cancelled.whenSettled(() => runs.push("cancelled"));
    expect(runs).toEqual([]);
    resolved.resolve(1);
    resolved.reject(new Error("late"));
    expect(runs).toEqual(["resolved"]);
    signal.abort();
    expect(runs).toEqual(["resolved", "cancelled"]);
    await clock.advance(100);
    expect(runs).toEqual(["resolved", "cancelled", "timed out"]);
    await expect(resolved.promise).resolves.toBe(1);
    await expect(timedOut.promise).rejects.toBeInstanceOf(TimeoutError);
    await expect(cancelled.promise).rejects.toBeInstanceOf(CancelledError);
  });

  it("runs at once for an operation already settled", () => {
    const done = operation(new ManualClock());
    done.resolve(2);
    let ran = false;
    done.whenSettled(() => (ran = true));
    expect(ran).toBe(true);
  });

  it("leaves no listener on a long-lived signal once settled", () => {
    const clock = new ManualClock();
    const signal = new AbortController().signal;
    for (let i = 0; i < 10; i++) operation(clock, signal).resolve(i);
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });
});
