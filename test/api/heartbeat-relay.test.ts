/**
 * A follower's heartbeat relay: the heartbeats of one window go to the leader in one batch, each
 * answered only when the leader took it; a failed batch fails each of its heartbeats; the number
 * waiting is bounded, and closing fails what waits.
 */
import { describe, expect, it } from "vitest";
import { OverloadedError, UnavailableError } from "../../src/common/errors.js";
import {
  HeartbeatRelay,
  MAX_RELAY_PENDING,
  RELAY_WINDOW_MS,
  type RelaySend,
} from "../../src/api/agents/heartbeat-relay.js";
import { ManualClock } from "../node/fakes.js";

const ACK = { leaderId: 1, workerDeadAfterMs: 10_000 };

function relay(send: RelaySend) {
  const clock = new ManualClock();
  return { clock, relay: new HeartbeatRelay({ clock, send }) };
}

describe("HeartbeatRelay", () => {
  it("sends one window's heartbeats as one batch, each node once, and answers them all", async () => {
    const batches: number[][] = [];
    const { clock, relay: r } = relay(async (ids) => {
      batches.push([...ids]);
      return ACK;
    });
    const answers = Promise.all([r.submit(7), r.submit(8), r.submit(7)]);
    await clock.advance(RELAY_WINDOW_MS - 1);
    expect(batches).toEqual([]);
    await clock.advance(1);
    expect(await answers).toEqual([ACK, ACK, ACK]);
    expect(batches).toEqual([[7, 8]]);
    // The next window is a batch of its own.
    const later = r.submit(9);
    await clock.advance(RELAY_WINDOW_MS);
    expect(await later).toEqual(ACK);
    expect(batches).toEqual([[7, 8], [9]]);
    expect(r.batches).toBe(2);
  });

  it("fails every heartbeat of a batch the leader did not take", async () => {
    const { clock, relay: r } = relay(() => Promise.reject(new UnavailableError("no leader")));
    const answers = [r.submit(1), r.submit(2)].map((p) => p.catch((e: unknown) => e));
    await clock.advance(RELAY_WINDOW_MS);
    for (const answer of await Promise.all(answers))
      expect(answer).toBeInstanceOf(UnavailableError);
  });

  it("refuses past its bound with OVERLOADED, and fails what waits when closed", async () => {
    const { relay: r } = relay(async () => ACK);
    const waiting = Array.from({ length: MAX_RELAY_PENDING }, (_, i) =>
      r.submit(i + 1).catch((e: unknown) => e),
    );
    await expect(r.submit(MAX_RELAY_PENDING + 1)).rejects.toBeInstanceOf(OverloadedError);
    // A node already waiting shares its slot: no new one is needed.
    const again = r.submit(1).catch((e: unknown) => e);
    r.close();
    expect(await again).toBeInstanceOf(OverloadedError);
    expect(await waiting[0]).toBeInstanceOf(OverloadedError);
    await expect(r.submit(1)).rejects.toBeInstanceOf(OverloadedError);
  });
});
