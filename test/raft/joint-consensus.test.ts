/**
 * Joint consensus (Raft thesis §4.3, paper §6): while the configuration is C_old,new, elections
 * and commits need a majority of C_old AND a majority of C_new. Entering and leaving follow
 * etcd's ConfChangeV2: Explicit stays joint until an empty conf change; Auto (with several
 * changes) and Implicit leave automatically; demoting a voter goes through learnersNext.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { ConflictError } from "../../src/common/errors.js";
import { ConfChangeTransition, MessageType, NONE } from "../../src/raft/types.js";
import { TestCluster } from "./cluster.js";
import {
  add,
  addLearner,
  addLearnersViaSnapshot,
  changeAndStabilize,
  configOf,
  LEAVE_JOINT,
  Network,
  proposeChange,
  remove,
  thrown,
  tickUntilLeader,
} from "./membership-helpers.js";

const { Auto, Implicit, Explicit } = ConfChangeTransition;

/** The joint configuration {1,2,3} → {1,4,5}, as a ConfState. */
const JOINT_123_145 = {
  voters: [1, 4, 5],
  votersOutgoing: [1, 2, 3],
  learners: [],
  learnersNext: [],
  autoLeave: false,
};

/**
 * Voters {1,2,3} with leader 1; 4 and 5 join as learners, then the cluster enters the joint
 * configuration C_old = {1,2,3}, C_new = {1,4,5} explicitly.
 */
function enterJoint123to145(): TestCluster {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  addLearnersViaSnapshot(c, 1, [4, 5]);
  changeAndStabilize(c, 1, [add(4), add(5), remove(2), remove(3)], Explicit);
  for (const id of [1, 2, 3, 4, 5]) expect(configOf(c, id)).toEqual(JOINT_123_145);
  return c;
}

describe("joint consensus needs both majorities (thesis §4.3)", () => {
  let c: TestCluster;
  let net: Network;
  beforeEach(() => {
    c = enterJoint123to145();
    net = new Network(c);
  });

  it("with only the old majority reachable nothing commits; adding a new majority commits", () => {
    // Set up: the leader reaches only C_old = {1,2,3}.
    net.groups([1, 2, 3], [4, 5]);
    const committed = c.raft(1).raftLog.committed;

    // Act: propose, and let a heartbeat round pass.
    c.propose(1, "x");
    c.tick(1);
    c.stabilize();

    // Check: 3 of 3 old voters have it, but 1 of {1,4,5} is no new majority: not committed.
    expect(c.raft(2).raftLog.lastIndex()).toBe(c.raft(1).raftLog.lastIndex());
    expect(c.raft(1).raftLog.committed).toBe(committed);
    expect(c.appliedCommands(1)).toEqual([]);

    // Act: node 4 becomes reachable too ({1,4} is a majority of C_new).
    net.groups([1, 2, 3, 4], [5]);
    c.tick(1);
    c.stabilize();

    // Check: both majorities have it now: it commits.
    for (const id of [1, 2, 3, 4]) expect(c.appliedCommands(id)).toEqual(["x"]);
  });

  it("with only the new majority reachable nothing commits", () => {
    // Set up: the leader reaches only C_new = {1,4,5}.
    net.groups([1, 4, 5], [2, 3]);
    const committed = c.raft(1).raftLog.committed;

    // Act: propose, and let a heartbeat round pass.
    c.propose(1, "x");
    c.tick(1);
    c.stabilize();

    // Check: C_new has it, C_old has only the leader: not committed.
    expect(c.raft(4).raftLog.lastIndex()).toBe(c.raft(1).raftLog.lastIndex());
    expect(c.raft(1).raftLog.committed).toBe(committed);
    expect(c.appliedCommands(1)).toEqual([]);
  });

  it("with one majority of each half reachable ({1,2} and {1,4}) proposals commit", () => {
    // Set up: 3 and 5 are cut off.
    net.groups([1, 2, 4], [3], [5]);

    // Act: propose.
    c.propose(1, "x");

    // Check: {1,2} of C_old and {1,4} of C_new have it: committed.
    for (const id of [1, 2, 4]) expect(c.appliedCommands(id)).toEqual(["x"]);
  });

  it("no election succeeds with only one half's majority reachable; with both one does", () => {
    // Set up: the leader (a member of both halves) crashes; {2,3} is a majority of C_old only,
    // {4,5} a majority of C_new only, and they cannot talk.
    c.crash(1);
    net.groups([2, 3], [4, 5]);
    const terms = [2, 3, 4, 5].map((id) => c.raft(id).term);

    // Act: twenty election timeouts pass; both sides campaign.
    let leaderSeen = false;
    for (let i = 0; i < 200; i++) {
      c.tickAndStabilize(1);
      if (c.leader() !== NONE) leaderSeen = true;
    }

    // Check: nobody won, and both sides did try (pre-votes were sent from each).
    expect(leaderSeen).toBe(false);
    const candidates = new Set(net.voteRequests().map((m) => m.from));
    expect([2, 3].some((id) => candidates.has(id))).toBe(true);
    expect([4, 5].some((id) => candidates.has(id))).toBe(true);
    // Pre-vote kept the terms from running away while no election could be won.
    expect([2, 3, 4, 5].map((id) => c.raft(id).term)).toEqual(terms);

    // Act: the halves can talk again.
    net.heal();
    const leader = tickUntilLeader(c);

    // Check: a leader of the joint configuration is elected and commits with both halves.
    expect([2, 3, 4, 5]).toContain(leader);
    c.propose(leader, "y");
    for (const id of [2, 3, 4, 5]) expect(c.appliedCommands(id)).toEqual(["y"]);
  });
});

describe("leaving a joint configuration (thesis §4.3; etcd ConfChangeV2)", () => {
  it("Explicit stays joint until an empty conf change leaves it", () => {
    // Set up: joint {1,2,3} → {1,4,5}, entered with the Explicit transition.
    const c = enterJoint123to145();

    // Act: time passes.
    c.tickAndStabilize(30);

    // Check: still joint, and no other change may be proposed meanwhile.
    expect(configOf(c, 1)).toEqual(JOINT_123_145);
    const error = thrown(() => proposeChange(c, 1, [addLearner(6)]));
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).code).toBe("CONFLICT");

    // Act: leave explicitly.
    c.node(1).raw.proposeConfChange(LEAVE_JOINT);
    c.stabilize();

    // Check: every member of C_new applied the joint config then C_new, in that order.
    const final = { voters: [1, 4, 5], votersOutgoing: [], learners: [], learnersNext: [] };
    for (const id of [1, 4, 5]) {
      const states = c.node(id).confStates;
      expect(states.at(-2)).toEqual(JOINT_123_145);
      expect(states.at(-1)).toMatchObject({ ...final, autoLeave: false });
    }
    // The leader no longer tracks the removed nodes and no longer replicates to them.
    expect([...c.node(1).raw.status().progress.keys()]).toEqual([1, 4, 5]);
    c.propose(1, "after");
    for (const id of [1, 4, 5]) expect(c.appliedCommands(id)).toEqual(["after"]);
    for (const id of [2, 3]) expect(c.appliedCommands(id)).toEqual([]);
  });

  it("Auto with several changes enters joint and leaves it automatically", () => {
    // Set up: voters {1,2,3}, leader 1, node 4 a caught-up learner.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    addLearnersViaSnapshot(c, 1, [4]);
    const before = { 1: c.node(1).confStates.length, 2: c.node(2).confStates.length };

    // Act: replace 3 with 4 in one Auto change (two voter changes: joint is required).
    changeAndStabilize(c, 1, [add(4), remove(3)], Auto);

    // Check: each remaining node applied exactly two configs: joint (autoLeave), then the new
    // one, whose outgoing half is empty — the leader proposed the leave entry by itself.
    const joint = {
      voters: [1, 2, 4],
      votersOutgoing: [1, 2, 3],
      learners: [],
      learnersNext: [],
      autoLeave: true,
    };
    const final = {
      voters: [1, 2, 4],
      votersOutgoing: [],
      learners: [],
      learnersNext: [],
      autoLeave: false,
    };
    for (const id of [1, 2] as const) {
      expect(c.node(id).confStates.slice(before[id])).toEqual([joint, final]);
    }
    expect(c.node(4).confStates.slice(-2)).toEqual([joint, final]);
    c.propose(1, "x");
    for (const id of [1, 2, 4]) expect(c.appliedCommands(id)).toEqual(["x"]);
  });

  it("Implicit enters joint even for a single change, and leaves it automatically", () => {
    // Set up: voters {1,2,3}, leader 1.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);

    // Act: remove 3 with the Implicit transition.
    changeAndStabilize(c, 1, [remove(3)], Implicit);

    // Check: a joint step with autoLeave, then the plain new config.
    expect(c.node(1).confStates).toEqual([
      {
        voters: [1, 2],
        votersOutgoing: [1, 2, 3],
        learners: [],
        learnersNext: [],
        autoLeave: true,
      },
      { voters: [1, 2], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
    ]);
  });

  it("demoting a voter within a joint change stages it in learnersNext until the leave", () => {
    // Set up: voters {1,2,3}, leader 1, node 4 a caught-up learner.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    addLearnersViaSnapshot(c, 1, [4]);
    const net = new Network(c);

    // Act: swap roles of 3 and 4 in one explicit joint change.
    changeAndStabilize(c, 1, [add(4), addLearner(3)], Explicit);

    // Check: 3 is still an outgoing voter, staged to become a learner; it is no learner yet.
    const joint = {
      voters: [1, 2, 4],
      votersOutgoing: [1, 2, 3],
      learners: [],
      learnersNext: [3],
      autoLeave: false,
    };
    for (const id of [1, 2, 3, 4]) expect(configOf(c, id)).toEqual(joint);
    expect(c.raft(3).isLearner).toBe(false);

    // Check: as an outgoing voter 3 still counts: with 2 cut off, {1,3} is the C_old majority.
    net.isolate(2);
    c.propose(1, "x");
    for (const id of [1, 3, 4]) expect(c.appliedCommands(id)).toEqual(["x"]);

    // Act: heal and leave the joint config.
    net.heal();
    c.tick(1);
    c.stabilize();
    c.node(1).raw.proposeConfChange(LEAVE_JOINT);
    c.stabilize();

    // Check: 3 is now a learner in C_new; it keeps receiving the log but no longer counts.
    const final = {
      voters: [1, 2, 4],
      votersOutgoing: [],
      learners: [3],
      learnersNext: [],
      autoLeave: false,
    };
    for (const id of [1, 2, 3, 4]) expect(c.node(id).confStates.at(-1)).toEqual(final);
    expect(c.raft(3).isLearner).toBe(true);
    expect(c.raft(3).promotable()).toBe(false);
    net.isolate(2, 4);
    const committed = c.raft(1).raftLog.committed;
    c.propose(1, "y");
    expect(c.raft(3).raftLog.lastIndex()).toBe(c.raft(1).raftLog.lastIndex());
    expect(c.raft(1).raftLog.committed).toBe(committed);
    net.heal();
    c.tick(1);
    c.stabilize();
    for (const id of [1, 2, 3, 4]) expect(c.appliedCommands(id)).toEqual(["x", "y"]);
  });

  it("a leader in C_old only runs the change, then steps down when the joint config is left", () => {
    // Set up: voters {1,2,3}, leader 1, node 4 a caught-up learner.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    addLearnersViaSnapshot(c, 1, [4]);

    // Act: replace the leader itself with 4, leaving automatically (thesis §4.2.2).
    changeAndStabilize(c, 1, [add(4), remove(1)], Auto);

    // Check: 1 led through the joint phase (its leave entry committed) and then stepped down.
    expect(c.node(1).confStates.at(-1)).toMatchObject({ voters: [2, 3, 4], votersOutgoing: [] });
    expect(c.raft(1).role).not.toBe("leader");
    expect(c.raft(1).promotable()).toBe(false);

    // Act: the remaining voters elect a leader.
    const leader = tickUntilLeader(c);

    // Check: it is one of C_new, and it commits.
    expect([2, 3, 4]).toContain(leader);
    c.propose(leader, "x");
    for (const id of [2, 3, 4]) expect(c.appliedCommands(id)).toEqual(["x"]);
  });

  it("a new leader that inherits an auto-leave joint config leaves it (etcd appliedTo)", () => {
    // Set up: voters {1,2,3}, leader 1, learner 4. Leader 1 enters an auto-leave joint config,
    // but its leave entry never reaches anyone, and then it crashes.
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    addLearnersViaSnapshot(c, 1, [4]);
    const net = new Network(c);
    const enterIndex = proposeChange(c, 1, [add(4), remove(3)], Auto);
    net.block((m) => m.type === MessageType.App && m.entries.some((e) => e.index > enterIndex));
    c.stabilize();
    for (const id of [2, 3, 4]) expect(configOf(c, id).autoLeave).toBe(true);
    for (const id of [2, 3, 4]) expect(c.raft(id).raftLog.lastIndex()).toBe(enterIndex);
    c.crash(1);
    net.heal();

    // Act: time passes until the survivors are out of the joint config.
    for (let i = 0; i < 200 && configOf(c, 2).votersOutgoing.length > 0; i++) {
      c.tickAndStabilize(1);
    }

    // Check: the new leader proposed the leave entry itself; {2,4} of C_new lead on.
    for (const id of [2, 4]) {
      expect(configOf(c, id)).toEqual({
        voters: [1, 2, 4],
        votersOutgoing: [],
        learners: [],
        learnersNext: [],
        autoLeave: false,
      });
    }
    const leader = tickUntilLeader(c);
    expect([2, 4]).toContain(leader);
  });
});
