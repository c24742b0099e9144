/**
 * Leadership transfer (Raft thesis §3.10; etcd MsgTransferLeader / MsgTimeoutNow): the leader
 * stops accepting proposals, brings the transferee's log up to date, then tells it to campaign
 * at once (TimeoutNow); the transfer is abandoned if it does not finish within an election
 * timeout. Each test reads set up → act → check.
 */
import { describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/common/errors.js";
import { MessageType, NONE, Role } from "../../src/raft/types.js";
import { bytes, TestCluster } from "./cluster.js";
import {
  changeAndStabilize,
  Network,
  proposeChange,
  remove,
  thrown,
} from "./membership-helpers.js";

/** Default election timeout of the harness's nodes, in ticks. */
const ELECTION_TICKS = 10;

describe("successful transfer (thesis §3.10)", () => {
  it("to an up-to-date follower: it becomes leader in the next term at once, without pre-vote", () => {
    // Set up: voters {1,2,3}, leader 1, everyone up to date.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    const term = c.raft(1).term;
    const net = new Network(c);

    // Act: transfer to 2; no time passes (no ticks at all).
    c.node(1).raw.transferLeader(2);
    c.stabilize();

    // Check: 1 told 2 to time out at once; 2 won the next term with a real vote (no pre-vote
    // round, no election timeout), and 1 follows it.
    expect(net.ofType(MessageType.TimeoutNow)).toMatchObject([{ from: 1, to: 2 }]);
    expect(net.ofType(MessageType.PreVote)).toEqual([]);
    expect(net.ofType(MessageType.Vote, 2).length).toBe(2);
    expect(c.leader()).toBe(2);
    expect(c.raft(2).term).toBe(term + 1);
    expect(c.raft(1).role).toBe(Role.Follower);
    expect(c.raft(1).lead).toBe(2);

    // Check: the new leader commits proposals.
    c.propose(2, "b");
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b"]);
  });

  it("to a lagging follower: the leader first catches it up, then sends TimeoutNow", () => {
    // Set up: voters {1,2,3}, leader 1; node 3 misses two entries.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const net = new Network(c);
    net.isolate(3);
    c.propose(1, "a");
    c.propose(1, "b");
    const leaderLast = c.raft(1).raftLog.lastIndex();
    expect(c.raft(3).raftLog.lastIndex()).toBeLessThan(leaderLast);
    net.heal();
    net.clear();

    // Act: transfer to 3.
    c.node(1).raw.transferLeader(3);

    // Check: the transfer is under way, and the leader's first move is an append, not TimeoutNow.
    expect(c.raft(1).leadTransferee).toBe(3);
    const first = c.raft(1).msgs.filter((m) => m.to === 3);
    expect(first.map((m) => m.type)).toEqual([MessageType.App]);

    // Act: let the messages flow (no ticks).
    c.stabilize();

    // Check: TimeoutNow was sent only after 3 acknowledged the leader's last index; 3 leads
    // with the complete log.
    const timeoutAt = net.sent.findIndex((m) => m.type === MessageType.TimeoutNow);
    const caughtUpAt = net.sent.findIndex(
      (m) => m.type === MessageType.AppResp && m.from === 3 && !m.reject && m.index === leaderLast,
    );
    expect(caughtUpAt).toBeGreaterThanOrEqual(0);
    expect(timeoutAt).toBeGreaterThan(caughtUpAt);
    expect(c.leader()).toBe(3);
    c.propose(3, "c");
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b", "c"]);
  });

  it("a transfer asked of a follower is forwarded to the leader and hands over to the transferee", () => {
    // Set up: voters {1,2,3}, leader 1.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);

    // Act: node 2 asks for leadership to go to node 3.
    c.node(2).raw.transferLeader(3);
    c.stabilize();

    // Check: 3 (not the forwarding node 2) is the new leader.
    expect(c.leader()).toBe(3);
  });
});

describe("aborted or ignored transfer (thesis §3.10: abandon after an election timeout)", () => {
  it("an unreachable transferee: proposals are refused, then the transfer is abandoned", () => {
    // Set up: voters {1,2,3}, leader 1; node 3 is unreachable.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const term = c.raft(1).term;
    const net = new Network(c);
    net.isolate(3);

    // Act: transfer to 3.
    c.node(1).raw.transferLeader(3);

    // Check: while it runs, proposals fail with UNAVAILABLE.
    expect(c.raft(1).leadTransferee).toBe(3);
    const error = thrown(() => c.node(1).raw.propose(bytes("x")));
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).code).toBe("UNAVAILABLE");

    // Act: one tick short of an election timeout passes.
    c.tickAndStabilize(ELECTION_TICKS - 1);

    // Check: still transferring.
    expect(c.raft(1).leadTransferee).toBe(3);

    // Act: the last tick of the election timeout.
    c.tickAndStabilize(1);

    // Check: abandoned; 1 is still the leader in the same term and accepts proposals again.
    expect(c.raft(1).leadTransferee).toBe(NONE);
    expect(c.leader()).toBe(1);
    expect(c.raft(1).term).toBe(term);
    c.propose(1, "y");
    for (const id of [1, 2]) expect(c.appliedCommands(id)).toEqual(["y"]);
  });

  it("a transfer to a learner is ignored", () => {
    // Set up: voters {1,2}, learner 3, leader 1.
    const c = new TestCluster({ voters: [1, 2], learners: [3] });
    c.elect(1);
    const net = new Network(c);

    // Act: ask to transfer to the learner.
    c.node(1).raw.transferLeader(3);
    c.stabilize();

    // Check: nothing started: no TimeoutNow, 1 still leads and accepts proposals.
    expect(c.raft(1).leadTransferee).toBe(NONE);
    expect(net.ofType(MessageType.TimeoutNow)).toEqual([]);
    c.propose(1, "a");
    expect(c.leader()).toBe(1);
    expect(c.appliedCommands(3)).toEqual(["a"]);
  });

  it("a transfer to itself or to a non-member is ignored", () => {
    // Set up: voters {1,2,3}, leader 1.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);

    // Act + check: neither starts a transfer.
    c.node(1).raw.transferLeader(1);
    expect(c.raft(1).leadTransferee).toBe(NONE);
    c.node(1).raw.transferLeader(9);
    expect(c.raft(1).leadTransferee).toBe(NONE);
    c.propose(1, "a");
    expect(c.appliedCommands(1)).toEqual(["a"]);
  });

  it("removing the transferee aborts the transfer (etcd TestLeaderTransferRemoveNode)", () => {
    // Set up: voters {1,2,3}, leader 1; 3 is unreachable and its removal is proposed.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const net = new Network(c);
    net.isolate(3);
    proposeChange(c, 1, [remove(3)]);

    // Act: start a transfer to 3, then let the removal commit and apply (no ticks).
    c.node(1).raw.transferLeader(3);
    expect(c.raft(1).leadTransferee).toBe(3);
    c.stabilize();

    // Check: the transfer ended with the removal; 1 leads {1,2} and accepts proposals at once.
    expect(c.raft(1).trk.confState().voters).toEqual([1, 2]);
    expect(c.raft(1).leadTransferee).toBe(NONE);
    c.propose(1, "a");
    for (const id of [1, 2]) expect(c.appliedCommands(id)).toEqual(["a"]);
  });

  it("leadership can be transferred back, and the old leader then leads normally", () => {
    // Set up: leadership moved from 1 to 2.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.node(1).raw.transferLeader(2);
    c.stabilize();
    expect(c.leader()).toBe(2);

    // Act: transfer back to 1, which then changes the membership.
    c.node(2).raw.transferLeader(1);
    c.stabilize();
    changeAndStabilize(c, 1, [remove(3)]);

    // Check: 1 leads again, and the cluster is healthy.
    expect(c.leader()).toBe(1);
    c.propose(1, "a");
    for (const id of [1, 2]) expect(c.appliedCommands(id)).toEqual(["a"]);
  });
});
