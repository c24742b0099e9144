/**
 * Linearizable reads without log writes (Raft thesis §6.4, etcd ReadIndex): the leader records
 * its commit index, confirms it is still the leader with one heartbeat round acknowledged by a
 * quorum, and answers with a ReadState the application serves once it has applied that index.
 * A new leader first commits an entry of its own term (§6.4 step 1). Lease-based reads (§6.4.1)
 * skip the round and rely on check-quorum. Each test reads set up → act → check.
 */
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, NotLeaderError } from "../../src/common/errors.js";
import { SeededRandom } from "../../src/common/random.js";
import { ReadOnlyOption } from "../../src/raft/read-only.js";
import { RawNode } from "../../src/raft/rawnode.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { MessageType, Role } from "../../src/raft/types.js";
import { TestCluster, text } from "./cluster.js";
import { Network, readCtx, thrown } from "./membership-helpers.js";

/** The read states `id` has received, as `{index, ctx}` with the context as a string. */
function readsOf(c: TestCluster, id: number): { index: number; ctx: string }[] {
  return c.node(id).readStates.map((rs) => ({ index: rs.index, ctx: text(rs.requestCtx) }));
}

describe("ReadIndex on the leader (thesis §6.4, safe mode)", () => {
  it("a new leader holds reads until an entry of its term commits", () => {
    // Set up: voters {1,2,3}; node 1 wins an election but its appends (the no-op) are lost.
    const c = new TestCluster({ voters: [1, 2, 3] });
    const net = new Network(c);
    net.block((m) => m.type === MessageType.App);
    c.elect(1);
    expect(c.raft(1).role).toBe(Role.Leader);
    const noopIndex = c.raft(1).raftLog.lastIndex();
    expect(c.raft(1).raftLog.committed).toBeLessThan(noopIndex);

    // Act: a read arrives.
    c.node(1).raw.readIndex(readCtx("r1"));
    c.stabilize();

    // Check: no ReadState yet, and no heartbeat round was started for it: it waits.
    expect(readsOf(c, 1)).toEqual([]);
    expect(c.raft(1).pendingReadCount()).toBe(1);
    expect(net.ofType(MessageType.Heartbeat)).toEqual([]);

    // Act: appends get through again; one heartbeat later the no-op commits.
    net.heal();
    c.tick(1);
    c.stabilize();

    // Check: the read was confirmed at the commit index, which is the no-op's.
    expect(c.raft(1).raftLog.committed).toBe(noopIndex);
    expect(readsOf(c, 1)).toEqual([{ index: noopIndex, ctx: "r1" }]);
    expect(c.raft(1).pendingReadCount()).toBe(0);
  });

  it("after the no-op commits, a read gets ReadState(commit index) after one heartbeat round", () => {
    // Set up: voters {1,2,3}, leader 1 with a committed command.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    const commit = c.raft(1).raftLog.committed;
    const net = new Network(c);

    // Act: a read arrives at the leader.
    c.node(1).raw.readIndex(readCtx("r1"));

    // Check: nothing is confirmed before the followers answer; one heartbeat per follower is out,
    // carrying the read's context.
    expect(c.raft(1).readStates).toEqual([]);
    const heartbeats = c.raft(1).msgs.filter((m) => m.type === MessageType.Heartbeat);
    expect(heartbeats.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(heartbeats.every((m) => m.context !== undefined && text(m.context) === "r1")).toBe(true);

    // Act: deliver the round.
    c.stabilize();

    // Check: confirmed at the commit index after exactly one round, with no log write.
    expect(readsOf(c, 1)).toEqual([{ index: commit, ctx: "r1" }]);
    expect(net.ofType(MessageType.Heartbeat)).toHaveLength(2);
    expect(net.ofType(MessageType.App)).toEqual([]);
    expect(c.raft(1).raftLog.lastIndex()).toBe(commit);
  });

  it("a heartbeat acknowledged by one follower is enough: leader + 1 of 3 is a quorum", () => {
    // Set up: voters {1,2,3}, leader 1; node 3 is cut off.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const net = new Network(c);
    net.isolate(3);

    // Act: a read.
    c.node(1).raw.readIndex(readCtx("r1"));
    c.stabilize();

    // Check: confirmed by {1,2}.
    expect(readsOf(c, 1)).toEqual([{ index: c.raft(1).raftLog.committed, ctx: "r1" }]);
  });

  it("with the quorum unreachable no ReadState is produced; the read waits for a quorum", () => {
    // Set up: voters {1,2,3}, leader 1 cut off from both followers.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const net = new Network(c);
    net.isolate(1);

    // Act: a read, and a few heartbeat intervals (less than an election timeout).
    c.node(1).raw.readIndex(readCtx("r1"));
    c.stabilize();
    c.tickAndStabilize(5);

    // Check: nothing confirmed; the read is still pending.
    expect(readsOf(c, 1)).toEqual([]);
    expect(c.raft(1).pendingReadCount()).toBe(1);

    // Act: the partition heals; the next heartbeat carries the pending read's context.
    net.heal();
    c.tick(1);
    c.stabilize();

    // Check: confirmed now.
    expect(readsOf(c, 1)).toEqual([{ index: c.raft(1).raftLog.committed, ctx: "r1" }]);
  });
});

describe("ReadIndex on a follower (etcd: forwarded as MsgReadIndex, answered with MsgReadIndexResp)", () => {
  it("a follower forwards the read to the leader and receives a ReadState", () => {
    // Set up: voters {1,2,3}, leader 1 with a committed command.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    const commit = c.raft(1).raftLog.committed;
    const net = new Network(c);

    // Act: a read at follower 2.
    c.node(2).raw.readIndex(readCtx("f1"));
    c.stabilize();

    // Check: 2 → 1 ReadIndex, 1 → 2 ReadIndexResp, and the ReadState is 2's, not the leader's.
    expect(net.ofType(MessageType.ReadIndex)).toMatchObject([{ from: 2, to: 1 }]);
    expect(net.ofType(MessageType.ReadIndexResp)).toMatchObject([
      { from: 1, to: 2, index: commit },
    ]);
    expect(readsOf(c, 2)).toEqual([{ index: commit, ctx: "f1" }]);
    expect(readsOf(c, 1)).toEqual([]);
  });

  it("a follower that knows no leader refuses the read with NOT_LEADER", () => {
    // Set up: voters {1,2,3}, no election yet.
    const c = new TestCluster({ voters: [1, 2, 3] });

    // Act: a read at node 2.
    const error = thrown(() => c.node(2).raw.readIndex(readCtx("f1")));

    // Check: refused.
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).code).toBe("NOT_LEADER");
  });
});

describe("lease-based reads (thesis §6.4.1; etcd ReadOnlyLeaseBased)", () => {
  const config = { readOnlyOption: ReadOnlyOption.LeaseBased, checkQuorum: true };

  it("the leader answers at once, without a heartbeat round", () => {
    // Set up: voters {1,2,3} with lease-based reads, leader 1 with a committed command.
    const c = new TestCluster({ voters: [1, 2, 3], config });
    c.elect(1);
    c.propose(1, "a");
    const commit = c.raft(1).raftLog.committed;
    const net = new Network(c);

    // Act: a read at the leader.
    c.node(1).raw.readIndex(readCtx("r1"));

    // Check: confirmed immediately, with no message sent.
    expect(c.raft(1).readStates.map((rs) => rs.index)).toEqual([commit]);
    expect(c.raft(1).msgs).toEqual([]);
    c.stabilize();
    expect(readsOf(c, 1)).toEqual([{ index: commit, ctx: "r1" }]);
    expect(net.sent).toEqual([]);
  });

  it("a follower's read is answered by the leader without a heartbeat round", () => {
    // Set up: as above.
    const c = new TestCluster({ voters: [1, 2, 3], config });
    c.elect(1);
    c.propose(1, "a");
    const net = new Network(c);

    // Act: a read at follower 3.
    c.node(3).raw.readIndex(readCtx("f1"));
    c.stabilize();

    // Check: just the request and the answer.
    expect(net.sent.map((m) => m.type)).toEqual([MessageType.ReadIndex, MessageType.ReadIndexResp]);
    expect(readsOf(c, 3)).toEqual([{ index: c.raft(1).raftLog.committed, ctx: "f1" }]);
  });

  it("a RawNode with lease-based reads and checkQuorum off is refused with INVALID_ARGUMENT", () => {
    // Set up: a lease-based config without check-quorum (a deposed leader could serve stale reads).
    const build = (): RawNode =>
      new RawNode({
        id: 1,
        storage: new MemoryStorage({
          confState: {
            voters: [1],
            learners: [],
            votersOutgoing: [],
            learnersNext: [],
            autoLeave: false,
          },
        }),
        random: new SeededRandom(1),
        readOnlyOption: ReadOnlyOption.LeaseBased,
        checkQuorum: false,
      });

    // Act: construct it.
    const error = thrown(build);

    // Check: refused.
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).code).toBe("INVALID_ARGUMENT");
  });
});

describe("batching (etcd readOnly: an acknowledgement confirms every earlier request)", () => {
  it("many concurrent reads are confirmed by one heartbeat round", () => {
    // Set up: voters {1,2,3}, leader 1; the heartbeats started for individual reads are lost.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    const commit = c.raft(1).raftLog.committed;
    const net = new Network(c);
    net.block((m) => m.type === MessageType.Heartbeat);
    const labels = ["r1", "r2", "r3", "r4", "r5"];
    for (const label of labels) c.node(1).raw.readIndex(readCtx(label));
    c.stabilize();
    expect(readsOf(c, 1)).toEqual([]);
    expect(c.raft(1).pendingReadCount()).toBe(labels.length);

    // Act: one heartbeat interval; its heartbeats carry the newest pending read's context.
    net.heal();
    net.clear();
    c.tick(1);
    c.stabilize();

    // Check: one heartbeat per follower was enough to confirm all five, in order.
    const heartbeats = net.ofType(MessageType.Heartbeat);
    expect(heartbeats).toHaveLength(2);
    expect(heartbeats.every((m) => m.context !== undefined && text(m.context) === "r5")).toBe(true);
    expect(readsOf(c, 1)).toEqual(labels.map((ctx) => ({ index: commit, ctx })));
    expect(c.raft(1).pendingReadCount()).toBe(0);
  });

  it("reads arriving at the leader and at followers in the same instant all get the same index", () => {
    // Set up: voters {1,2,3}, leader 1, reads arriving at the leader and at both followers.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    const commit = c.raft(1).raftLog.committed;

    // Act: three reads in the same instant.
    c.node(1).raw.readIndex(readCtx("l"));
    c.node(2).raw.readIndex(readCtx("f2"));
    c.node(3).raw.readIndex(readCtx("f3"));
    c.stabilize();

    // Check: everyone got a ReadState at the same commit index.
    expect(readsOf(c, 1)).toEqual([{ index: commit, ctx: "l" }]);
    expect(readsOf(c, 2)).toEqual([{ index: commit, ctx: "f2" }]);
    expect(readsOf(c, 3)).toEqual([{ index: commit, ctx: "f3" }]);
  });
});
