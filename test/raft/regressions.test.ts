/**
 * Minimized schedules the randomized properties (properties.test.ts) found, each pinned as a
 * deterministic scenario so the bug it exposed stays fixed.
 */
import { describe, expect, it } from "vitest";
import { MessageType } from "../../src/raft/types.js";
import { bytes, TestCluster } from "./cluster.js";

describe("regressions found by the randomized safety properties", () => {
  it("a forwarded leadership transfer reaching a node that knows no leader is dropped, not thrown", () => {
    // Found by: 3 nodes, a follower forwards transferLeader to its leader; before the message
    // arrives the leader steps down (check-quorum) and knows no leader. RawNode.step threw
    // NotLeaderError at the transport, for a message from a peer.
    const c = new TestCluster({ voters: [1, 2, 3], config: { checkQuorum: true } });
    c.elect(1);
    c.node(2).raw.transferLeader(3);
    c.processReady(2);
    const forwarded = c.queue.filter((m) => m.type === MessageType.TransferLeader && m.to === 1);
    expect(forwarded).toHaveLength(1);
    c.queue = [];
    // Two election timeouts without hearing from anyone: node 1 steps down, leader unknown.
    c.tick(1, 20);
    expect(c.raft(1).role).toBe("follower");
    expect(c.raft(1).lead).toBe(0);
    expect(() => c.deliver(forwarded[0]!)).not.toThrow();
    // The cluster carries on: a new leader is elected and proposals commit.
    c.queue = [];
    c.tickAndStabilize(40);
    const leader = c.leader();
    expect(leader).not.toBe(0);
    c.propose(leader, "x");
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["x"]);
  });

  it("a follower whose whole inflight window was lost catches up after heartbeats", () => {
    // Found by the liveness check: with a small inflight window, every append in flight to a
    // follower in replicate state is lost. The window stays full, so the leader never sent it
    // another append: heartbeat responses did not unblock it, and the follower, hearing
    // heartbeats, never campaigned either. It stayed behind forever.
    const c = new TestCluster({ voters: [1, 2, 3], config: { maxInflightMessages: 1 } });
    c.elect(1);
    c.propose(1, "a"); // the follower is in replicate state now
    c.node(1).raw.propose(bytes("b"));
    c.processReady(1);
    // The append carrying "b" to node 2 is lost: node 2's window (one message) is full.
    c.queue = c.queue.filter((m) => !(m.type === MessageType.App && m.to === 2));
    c.stabilize();
    c.propose(1, "c");
    expect(c.appliedCommands(2)).toEqual(["a"]);
    c.tickAndStabilize(5);
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b", "c"]);
  });
});
