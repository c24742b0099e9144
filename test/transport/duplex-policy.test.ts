/**
 * Which control messages a link copies onto the reverse path (duplex-policy.ts), on a manual
 * clock: votes always; heartbeats once the peer has been silent past the limit; answers only
 * while the peer's heartbeats keep coming back, and never because answers came back.
 */
import { describe, expect, it } from "vitest";
import { MessageType } from "../../src/raft/types.js";
import { DuplexPolicy } from "../../src/transport/duplex-policy.js";
import { duplexLimitsForTimings } from "../../src/transport/limits.js";
import { ManualClock } from "../node/fakes.js";

function setup() {
  const clock = new ManualClock();
  let lastHeardMs: number | undefined;
  const policy = new DuplexPolicy({
    clock,
    afterSilenceMs: 150,
    holdMs: 1000,
    lastHeardMs: () => lastHeardMs,
  });
  return {
    clock,
    policy,
    heard: () => (lastHeardMs = clock.now()),
  };
}

describe("DuplexPolicy", () => {
  it("always copies votes, pre-votes and their answers", () => {
    const { policy, heard } = setup();
    heard();
    for (const type of [
      MessageType.Vote,
      MessageType.VoteResp,
      MessageType.PreVote,
      MessageType.PreVoteResp,
    ]) {
      expect(policy.copies(type)).toBe(true);
    }
  });

  it("copies a heartbeat only once the peer has been silent for the limit", async () => {
    const { clock, policy, heard } = setup();
    // Never heard from (a link just made): in doubt.
    expect(policy.copies(MessageType.Heartbeat)).toBe(true);
    heard();
    // Answers every 100 ms: never in doubt.
    for (let i = 0; i < 20; i++) {
      await clock.advance(100);
      expect(policy.copies(MessageType.Heartbeat)).toBe(false);
      heard();
    }
    await clock.advance(149);
    expect(policy.copies(MessageType.Heartbeat)).toBe(false);
    await clock.advance(1);
    expect(policy.copies(MessageType.Heartbeat)).toBe(true);
    heard();
    expect(policy.copies(MessageType.Heartbeat)).toBe(false);
  });

  it("copies answers for the hold time after the peer's heartbeat came back, then stops", async () => {
    const { clock, policy, heard } = setup();
    heard();
    expect(policy.copies(MessageType.HeartbeatResp)).toBe(false);
    expect(policy.copies(MessageType.AppResp)).toBe(false);
    policy.heartbeatCameBack();
    await clock.advance(999);
    expect(policy.copies(MessageType.HeartbeatResp)).toBe(true);
    expect(policy.copies(MessageType.AppResp)).toBe(true);
    // Each copy that comes back extends the hold.
    policy.heartbeatCameBack();
    await clock.advance(999);
    expect(policy.copies(MessageType.AppResp)).toBe(true);
    await clock.advance(1);
    expect(policy.copies(MessageType.HeartbeatResp)).toBe(false);
    expect(policy.copies(MessageType.AppResp)).toBe(false);
    // Hearing the peer promptly does not make this side copy its heartbeats meanwhile.
    heard();
    expect(policy.copies(MessageType.Heartbeat)).toBe(false);
  });

  it("derives its limits from the heartbeat interval and the election timeout", () => {
    expect(duplexLimitsForTimings(100, 1000)).toEqual({
      duplexAfterSilenceMs: 150,
      duplexHoldMs: 1000,
    });
    expect(duplexLimitsForTimings(50, 500)).toEqual({
      duplexAfterSilenceMs: 75,
      duplexHoldMs: 500,
    });
  });
});
