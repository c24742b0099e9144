/**
 * The gate a server's agent waits behind after a start: it opens after the first read barrier
 * that succeeds, retries failed ones with a growing wait, and never opens once closed.
 */
import { describe, expect, it } from "vitest";
import { NotLeaderError } from "../../../src/common/errors.js";
import {
  CatchUpGate,
  FIRST_RETRY_MS,
  MAX_RETRY_MS,
} from "../../../src/orchestrator/agent/catch-up-gate.js";
import { ManualClock } from "../../node/fakes.js";
import { SILENT } from "./agent-fakes.js";

/** A barrier that fails until `leader` is set, recording when it was asked. */
function fakeBarrier(clock: ManualClock) {
  const state = { leader: false, askedAt: [] as number[] };
  const barrier = async (): Promise<void> => {
    state.askedAt.push(clock.now());
    if (!state.leader) throw new NotLeaderError();
  };
  return { state, barrier };
}

describe("CatchUpGate", () => {
  it("opens once, after the first barrier that succeeds; waits longer after each failure", async () => {
    const clock = new ManualClock();
    const { state, barrier } = fakeBarrier(clock);
    let opened = 0;
    const gate = new CatchUpGate({ barrier, clock, log: SILENT, onCaughtUp: () => opened++ });
    gate.start();
    await clock.advance(FIRST_RETRY_MS * 7);
    // No leader: nothing starts, and the waits double (100, 200, 400 ms).
    expect(opened).toBe(0);
    expect(gate.open).toBe(false);
    expect(state.askedAt).toEqual([0, FIRST_RETRY_MS, 3 * FIRST_RETRY_MS, 7 * FIRST_RETRY_MS]);
    // The waits stop growing at the cap.
    await clock.advance(60_000);
    const gaps = state.askedAt.slice(1).map((at, i) => at - (state.askedAt[i] as number));
    expect(Math.max(...gaps)).toBe(MAX_RETRY_MS);
    state.leader = true;
    await clock.advance(MAX_RETRY_MS);
    expect(opened).toBe(1);
    expect(gate.open).toBe(true);
    const asked = state.askedAt.length;
    await clock.advance(60_000);
    expect(opened).toBe(1);
    expect(state.askedAt.length).toBe(asked);
  });

  it("never opens once closed, even if a barrier in flight then succeeds", async () => {
    const clock = new ManualClock();
    let release: () => void = () => undefined;
    let opened = 0;
    const gate = new CatchUpGate({
      barrier: () => new Promise<void>((resolve) => (release = resolve)),
      clock,
      log: SILENT,
      onCaughtUp: () => opened++,
    });
    gate.start();
    gate.close();
    release();
    await clock.advance(10_000);
    expect(opened).toBe(0);
    expect(gate.open).toBe(false);
  });
});
