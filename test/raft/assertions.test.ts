/**
 * The core's pre- and postconditions are live: each scenario drives a healthy node into a state
 * only a bug of ours could produce (through the white-box hook `coreOf`) and expects the
 * `invariant` that guards it to fail with INTERNAL, naming what broke. Peer input never gets
 * here: `peer-input.test.ts` checks it is refused or clamped instead.
 */
import { describe, expect, it } from "vitest";
import { InternalError } from "../../src/common/errors.js";
import { plantedRules } from "../../src/raft/planted-bugs.js";
import { MessageType, NONE } from "../../src/raft/types.js";
import { TestCluster } from "./cluster.js";
import { LoneNode } from "./scenario-helpers.js";

function expectInvariant(action: () => void, pattern: RegExp): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(InternalError);
  expect((thrown as InternalError).message).toMatch(pattern);
}

describe("role transitions", () => {
  it("a term never goes back: becoming a follower of an older term fails", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const core = c.raft(2);
    expectInvariant(() => core.becomeFollower(core.term - 1, NONE), /term must not decrease/);
  });

  it("a candidate that lost its own vote cannot become leader", () => {
    const n = new LoneNode({ id: 1, voters: [1, 2, 3], config: { preVote: false } });
    const requests = n.campaign();
    const request = requests.find((m) => m.type === MessageType.Vote);
    expect(request).toBeDefined();
    n.raft.vote = NONE; // the bug: a candidate whose vote for itself was lost
    expectInvariant(
      () => n.step({ type: MessageType.VoteResp, from: 2, term: request!.term }),
      /leader 1 of term \d+ has lead 1, vote 0/,
    );
  });

  it("a leader's commit lands on no entry of a later term than its own", () => {
    // A commit rule that counts any term (the planted Figure 8 bug) and a leader whose term was
    // rolled back below its own no-op: only the commit postcondition stands in the way.
    const n = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1],
      config: { rules: plantedRules({ countOldTermEntries: true }) },
    });
    n.becomeLeader();
    const noOpIndex = n.raft.raftLog.lastIndex();
    expect(n.raft.raftLog.committed).toBeLessThan(noOpIndex);
    n.raft.term -= 1; // the bug
    expectInvariant(
      () => n.step({ type: MessageType.AppResp, from: 2, term: n.raft.term, index: noOpIndex }),
      /leader of term \d+ committed an entry of term \d+/,
    );
  });
});

describe("replication", () => {
  it("a follower's progress never runs past the leader's log", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const leader = c.raft(1);
    const pr = leader.trk.progress.get(2)!;
    pr.next = leader.raftLog.lastIndex() + 5; // the bug
    expectInvariant(() => leader.bcastAppend(), /progress of 2 is past the leader's log/);
  });

  it("a progress only replicates after a probe", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const leader = c.raft(1);
    const pr = leader.trk.progress.get(2)!;
    pr.becomeProbe();
    pr.becomeSnapshot(leader.raftLog.lastIndex());
    expectInvariant(() => pr.becomeReplicate(), /only a probing follower may start replicating/);
  });

  it("a restore never moves the commit index back", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    const log = c.raft(2).raftLog;
    const committed = log.committed;
    expectInvariant(
      () =>
        log.restore({
          metadata: {
            index: committed - 1,
            term: 1,
            confState: c.raft(2).trk.confState(),
          },
          data: new Uint8Array(0),
        }),
      /restoring a snapshot at \d+ would move the commit index back/,
    );
  });

  it("the log refuses entries that are not contiguous", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    const log = c.raft(1).raftLog;
    const next = log.lastIndex() + 1;
    const entry = (index: number) => ({ term: 1, index, type: 0 as const, data: new Uint8Array() });
    expectInvariant(
      () => log.append([entry(next), entry(next + 2)]),
      /are not 2 contiguous indexes/,
    );
    expectInvariant(() => log.append([entry(next + 1)]), /missing log entries/);
  });
});
