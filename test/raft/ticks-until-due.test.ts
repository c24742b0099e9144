/**
 * `ticksUntilDue` lets the runtime sleep through ticks that do nothing: it must name exactly the
 * tick that acts (a follower's election, a leader's heartbeat or check-quorum round), never a
 * later one, or a lazy runtime would campaign or heartbeat late.
 */
import { describe, expect, it } from "vitest";
import { MessageType } from "../../src/raft/types.js";
import { LoneNode, MT, PAPER_CONFIG } from "./scenario-helpers.js";

/** Ticks `node` `n` times and returns what it sent. */
function tickTimes(node: LoneNode, n: number): MessageType[] {
  for (let i = 0; i < n; i++) node.raw.tick();
  return node.drain().map((m) => m.type);
}

describe("ticksUntilDue", () => {
  it("a follower campaigns on exactly the tick it names, and not one before", () => {
    for (const id of [1, 2, 3, 4, 5]) {
      const follower = new LoneNode({ id, voters: [1, 2, 3, 4, 5], config: PAPER_CONFIG });
      const due = follower.raw.ticksUntilDue();
      expect(due).toBeGreaterThanOrEqual(1);
      expect(tickTimes(follower, due - 1)).toEqual([]);
      expect(tickTimes(follower, 1)).toContain(MessageType.Vote);
    }
  });

  it("counts down as ticks pass, and restarts when the leader is heard", () => {
    const follower = new LoneNode({ id: 1, voters: [1, 2, 3], config: PAPER_CONFIG });
    const due = follower.raw.ticksUntilDue();
    tickTimes(follower, 3);
    expect(follower.raw.ticksUntilDue()).toBe(due - 3);
    follower.step({ type: MT.Heartbeat, from: 2, term: 1 });
    expect(follower.raw.ticksUntilDue()).toBeGreaterThanOrEqual(due - 3);
    expect(follower.raw.ticksUntilDue()).toBeGreaterThan(0);
  });

  it("a leader is due at its next heartbeat, and sends it on that tick", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      config: { ...PAPER_CONFIG, heartbeatTicks: 3 },
    });
    node.campaign();
    node.step({ type: MT.VoteResp, from: 2, term: 1 });
    expect(node.raft.role).toBe("leader");
    node.drain();
    expect(node.raw.ticksUntilDue()).toBe(3);
    expect(tickTimes(node, 2)).toEqual([]);
    expect(node.raw.ticksUntilDue()).toBe(1);
    expect(tickTimes(node, 1)).toContain(MessageType.Heartbeat);
    expect(node.raw.ticksUntilDue()).toBe(3);
  });

  it("a node outside the voters never campaigns, and is looked at again within an election timeout", () => {
    const outsider = new LoneNode({ id: 4, voters: [1, 2, 3], config: PAPER_CONFIG });
    const due = outsider.raw.ticksUntilDue();
    expect(due).toBeGreaterThanOrEqual(1);
    expect(due).toBeLessThanOrEqual(10);
    expect(tickTimes(outsider, 100)).toEqual([]);
  });
});
