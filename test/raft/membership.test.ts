/**
 * Membership scenarios with single-step changes: learners, promotion, one change at a time,
 * removing the leader or a follower, and campaigning with unapplied conf changes. Each test
 * names the rule it checks (Raft thesis chapter 4, etcd raft) and reads set up → act → check.
 * A change takes effect when its entry is applied (etcd apply-time semantics).
 */
import { describe, expect, it } from "vitest";
import { ConflictError, UnavailableError } from "../../src/common/errors.js";
import { EntryType, MessageType, NONE, Role } from "../../src/raft/types.js";
import { bytes, TestCluster } from "./cluster.js";
import {
  add,
  addLearner,
  addLearnersViaSnapshot,
  changeAndStabilize,
  configOf,
  Network,
  proposeChange,
  remove,
  stepUntilDelivered,
  thrown,
  tickUntilLeader,
} from "./membership-helpers.js";

/** Default election timeout of the harness's nodes, in ticks. */
const ELECTION_TICKS = 10;

describe("learners (thesis §4.2.1: non-voting members; etcd learners)", () => {
  it("a learner never campaigns, however many election timeouts pass without a leader", () => {
    // Set up: voters {1,2}, learner 3, leader 1; the learner hears from nobody.
    const c = new TestCluster({ voters: [1, 2], learners: [3] });
    c.elect(1);
    const net = new Network(c);
    net.isolate(3);
    const term = c.raft(3).term;

    // Act: twenty election timeouts pass on the learner.
    c.tick(3, 20 * ELECTION_TICKS);
    c.stabilize();

    // Check: it stayed a follower in its term and asked nobody for a vote.
    expect(c.raft(3).role).toBe(Role.Follower);
    expect(c.raft(3).term).toBe(term);
    expect(c.raft(3).promotable()).toBe(false);
    expect(net.voteRequests().filter((m) => m.from === 3)).toEqual([]);
  });

  it("a voter's election never asks a learner for its vote, and cannot be won with one", () => {
    // Set up: voters {1,2}, learner 3; the leader crashes.
    const c = new TestCluster({ voters: [1, 2], learners: [3] });
    c.elect(1);
    const net = new Network(c);
    c.crash(1);

    // Act: many election timeouts pass; node 2 campaigns again and again.
    c.tickAndStabilize(10 * ELECTION_TICKS);

    // Check: node 2 asked only voter 1 (down); learner 3 was never asked and never asked; with
    // one of two voters up, nobody won.
    const requests = net.voteRequests();
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((m) => m.from === 2 && m.to === 1)).toBe(true);
    expect(c.leader()).toBe(NONE);
    expect(c.raft(3).role).toBe(Role.Follower);
  });

  it("a commit needs a majority of the voters: a learner's acknowledgement does not count", () => {
    // Set up: voters {1,2}, learner 3, leader 1; voter 2 crashes.
    const c = new TestCluster({ voters: [1, 2], learners: [3] });
    c.elect(1);
    const committedBefore = c.raft(1).raftLog.committed;
    c.crash(2);

    // Act: propose at the leader.
    c.propose(1, "x");

    // Check: the learner stored the entry, but 1 of 2 voters is no majority: nothing commits.
    expect(c.raft(3).raftLog.lastIndex()).toBe(c.raft(1).raftLog.lastIndex());
    expect(c.raft(1).raftLog.committed).toBe(committedBefore);
    expect(c.appliedCommands(1)).toEqual([]);
    expect(c.appliedCommands(3)).toEqual([]);

    // Act: voter 2 comes back; one heartbeat later it catches up.
    c.restart(2);
    c.tick(1);
    c.stabilize();

    // Check: now a majority of the voters has it, and everyone (learner included) applies it.
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["x"]);
  });
});

describe("adding a learner, then promoting it (thesis §4.2.1: catch up before voting)", () => {
  it("a new node joins as a learner, catches up, and votes once promoted with AddNode", () => {
    // Set up: voters {1,2} with some history; node 3 is brand new.
    const c = new TestCluster({ voters: [1, 2] });
    c.elect(1);
    c.propose(1, "a");
    c.propose(1, "b");

    // Act: add 3 as a learner (it receives the configuration in a snapshot).
    addLearnersViaSnapshot(c, 1, [3]);
    c.propose(1, "c");

    // Check: the learner has caught up and applies new entries, but does not vote.
    expect(configOf(c, 1)).toMatchObject({ voters: [1, 2], learners: [3] });
    expect(configOf(c, 3)).toMatchObject({ voters: [1, 2], learners: [3] });
    expect(c.raft(3).raftLog.committed).toBe(c.raft(1).raftLog.committed);
    expect(c.appliedCommands(3)).toEqual(["c"]);
    expect(c.node(1).raw.status().progress.get(3)?.match).toBe(c.raft(1).raftLog.lastIndex());

    // Act: promote it.
    changeAndStabilize(c, 1, [add(3)]);

    // Check: every node now sees 3 as a voter, and 3 may campaign.
    for (const id of [1, 2, 3]) {
      expect(configOf(c, id)).toMatchObject({ voters: [1, 2, 3], learners: [] });
    }
    expect(c.raft(3).isLearner).toBe(false);
    expect(c.raft(3).promotable()).toBe(true);

    // Act: the leader crashes; the two survivors must elect one of them.
    const net = new Network(c);
    c.crash(1);
    const leader = tickUntilLeader(c);

    // Check: 2 of {1,2,3} won, which needs the vote of both survivors: 3 voted.
    expect([2, 3]).toContain(leader);
    const other = leader === 2 ? 3 : 2;
    const granted = net
      .ofType(MessageType.VoteResp, other)
      .filter((m) => m.to === leader && !m.reject);
    expect(granted.length).toBeGreaterThan(0);
    c.propose(leader, "d");
    expect(c.appliedCommands(3)).toEqual(["c", "d"]);
  });
});

describe("one membership change at a time (thesis §4.1; etcd pendingConfIndex)", () => {
  it("a second change is refused with CONFLICT while the first is not committed", () => {
    // Set up: voters {1,2,3}, leader 1; appends are lost so nothing commits.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const net = new Network(c);
    net.block((m) => m.type === MessageType.App);
    proposeChange(c, 1, [addLearner(4)]);
    c.stabilize();

    // Act: propose another change.
    const error = thrown(() => proposeChange(c, 1, [addLearner(5)]));

    // Check: refused with a ConflictError; the log holds only the first change.
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).code).toBe("CONFLICT");
    const changes = c.logEntries(1).filter((e) => e.type === EntryType.ConfChange);
    expect(changes).toHaveLength(1);

    // Act: the network heals; one heartbeat later the first change commits and applies.
    net.heal();
    c.tick(1);
    c.stabilize();
    changeAndStabilize(c, 1, [addLearner(5)]);

    // Check: once the first has applied the second is accepted, and both took effect.
    for (const id of [1, 2, 3]) {
      expect(configOf(c, id)).toMatchObject({ voters: [1, 2, 3], learners: [4, 5] });
    }
  });

  it("a committed but not yet applied change still blocks the next one", () => {
    // Set up: voters {1,2,3}, leader 1 proposes a change.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const ccIndex = proposeChange(c, 1, [addLearner(4)]);

    // Act: run until the leader learns of the quorum, but stop before it applies the entry.
    stepUntilDelivered(
      c,
      (m) => m.type === MessageType.AppResp && m.to === 1 && m.index >= ccIndex,
    );
    const log = c.raft(1).raftLog;
    expect(log.committed).toBeGreaterThanOrEqual(ccIndex);
    expect(log.applied).toBeLessThan(ccIndex);

    // Check: the next change is refused (apply-time semantics: committed is not enough).
    expect(thrown(() => proposeChange(c, 1, [addLearner(5)]))).toBeInstanceOf(ConflictError);

    // Check: after the leader applies it, the next change is accepted.
    c.stabilize();
    expect(() => proposeChange(c, 1, [addLearner(5)])).not.toThrow();
  });
});

describe("removing the leader (thesis §4.2.2; etcd stepDownOnRemoval)", () => {
  it("the leader steps down when its removal applies; the others elect a new leader", () => {
    // Set up: voters {1,2,3}, leader 1.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");

    // Act: remove the leader itself.
    changeAndStabilize(c, 1, [remove(1)]);

    // Check: it applied the change and stepped down; it may never campaign again.
    expect(c.node(1).confStates.at(-1)).toMatchObject({ voters: [2, 3] });
    expect(c.raft(1).role).toBe(Role.Follower);
    expect(c.raft(1).promotable()).toBe(false);
    for (const id of [2, 3]) expect(configOf(c, id)).toMatchObject({ voters: [2, 3] });

    // Act: time passes; the remaining voters hold an election.
    const leader = tickUntilLeader(c);

    // Check: one of them leads and the new configuration commits proposals.
    expect([2, 3]).toContain(leader);
    c.propose(leader, "b");
    for (const id of [2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b"]);
  });

  it("a removed node cannot disrupt the cluster: it never campaigns", () => {
    // Set up: node 1 removed, a new leader elected among {2,3}.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    changeAndStabilize(c, 1, [remove(1)]);
    const leader = tickUntilLeader(c);
    const term = c.raft(leader).term;
    const net = new Network(c);

    // Act: many election timeouts pass for everyone, node 1 included (it hears no leader).
    c.tickAndStabilize(10 * ELECTION_TICKS);

    // Check: node 1 asked nobody for a vote; the leader and its term are unchanged.
    expect(net.voteRequests().filter((m) => m.from === 1)).toEqual([]);
    expect(c.leader()).toBe(leader);
    expect(c.raft(leader).term).toBe(term);
    expect(c.raft(1).role).toBe(Role.Follower);
  });

  it("with stepDownOnRemoval off, a removed leader keeps leading but refuses proposals", () => {
    // Set up: voters {1,2,3}, leader 1, configured not to step down.
    const c = new TestCluster({ voters: [1, 2, 3], config: { stepDownOnRemoval: false } });
    c.elect(1);

    // Act: remove the leader.
    changeAndStabilize(c, 1, [remove(1)]);

    // Check: still in the leader role (the application shuts it down), but proposals fail
    // with UNAVAILABLE so clients go to the new configuration.
    expect(c.raft(1).role).toBe(Role.Leader);
    const error = thrown(() => c.node(1).raw.propose(bytes("x")));
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).code).toBe("UNAVAILABLE");
  });
});

describe("removing a follower (thesis §4.2.2: the new quorum is counted at once)", () => {
  it("the cluster continues with the smaller quorum: a commit needs 2 of {1,2}", () => {
    // Set up: voters {1,2,3}, leader 1; remove follower 3.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    changeAndStabilize(c, 1, [remove(3)]);
    for (const id of [1, 2]) expect(configOf(c, id)).toMatchObject({ voters: [1, 2] });
    const net = new Network(c);

    // Act: voter 2 is cut off; node 3 is still up.
    net.isolate(2);
    c.propose(1, "a");

    // Check: 3 is no longer replicated to and its acks would not count: 1 of {1,2} commits nothing.
    expect(net.ofType(MessageType.App).filter((m) => m.to === 3)).toEqual([]);
    expect(c.appliedCommands(1)).toEqual([]);

    // Act: 2 comes back; one heartbeat later it catches up.
    net.heal();
    c.tick(1);
    c.stabilize();

    // Check: 2 of {1,2} commit it; the removed node never sees it.
    for (const id of [1, 2]) expect(c.appliedCommands(id)).toEqual(["a"]);
    expect(c.appliedCommands(3)).toEqual([]);
  });

  it("entries waiting on the old quorum commit as soon as the removal applies (etcd TestCommitAfterRemoveNode)", () => {
    // Set up: voters {1,2}, leader 1; propose removing 2, then a command.
    const c = new TestCluster({ voters: [1, 2] });
    c.elect(1);
    const net = new Network(c);
    const ccIndex = proposeChange(c, 1, [remove(2)]);
    c.node(1).raw.propose(bytes("hello"));

    // Act: node 2 acknowledges the conf change but never receives the command.
    net.block((m) => m.type === MessageType.App && m.entries.some((e) => e.index > ccIndex));
    c.stabilize();

    // Check: applying the removal leaves {1}, whose quorum is 1 alone: "hello" commits.
    expect(configOf(c, 1)).toMatchObject({ voters: [1] });
    expect(c.raft(2).raftLog.lastIndex()).toBe(ccIndex);
    expect(c.appliedCommands(1)).toEqual(["hello"]);
  });
});

describe("no campaign with unapplied conf changes (etcd hasUnappliedConfChanges)", () => {
  it("a node whose committed conf change is not yet applied does not campaign", () => {
    // Set up: voters {1,2,3}, leader 1 proposes a change; node 2 learns it committed but
    // has not handled the Ready that applies it.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const ccIndex = proposeChange(c, 1, [addLearner(4)]);
    stepUntilDelivered(c, (m) => m.to === 2 && m.type === MessageType.App && m.commit >= ccIndex);
    const r2 = c.raft(2);
    expect(r2.raftLog.committed).toBeGreaterThanOrEqual(ccIndex);
    expect(r2.raftLog.applied).toBeLessThan(ccIndex);
    const term = r2.term;

    // Act: ask it to campaign, and let several election timeouts pass.
    c.node(2).raw.campaign();
    c.tick(2, 3 * ELECTION_TICKS);

    // Check: it stayed a follower in its term and sent no vote requests.
    expect(r2.role).toBe(Role.Follower);
    expect(r2.term).toBe(term);
    expect(
      r2.msgs.filter((m) => m.type === MessageType.PreVote || m.type === MessageType.Vote),
    ).toEqual([]);

    // Act: it applies the change, then is asked again.
    c.processReady(2);
    expect(r2.raftLog.applied).toBeGreaterThanOrEqual(ccIndex);
    c.node(2).raw.campaign();

    // Check: now it campaigns (a pre-vote first).
    expect(r2.role).toBe(Role.PreCandidate);
  });
});
