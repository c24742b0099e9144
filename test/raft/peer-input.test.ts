/**
 * Input from a peer can never crash or brick a node (issue #11). Each scenario steps a message
 * no real leader or follower sends (forged by an authenticated but hostile peer, or corrupt) and
 * checks the core refuses or clamps it, never fails an `invariant`, and keeps electing leaders.
 * The rules are etcd's raft where it has one (cited), else the Raft paper's.
 */
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_TERM_OR_INDEX, MessageType, type Message } from "../../src/raft/types.js";
import { bytes, TestCluster } from "./cluster.js";
import { entriesWithTerms, LoneNode } from "./scenario-helpers.js";

/** A 3-node cluster with node 1 leading and one committed command. */
function runningCluster(): TestCluster {
  const c = new TestCluster({ voters: [1, 2, 3], config: { preVote: true, checkQuorum: true } });
  c.elect(1);
  c.propose(1, "a");
  return c;
}

/** The cluster still elects a leader and commits after node 1 is isolated. */
function expectElectsAndCommits(c: TestCluster): void {
  c.isolate(1);
  c.tickAndStabilize(40);
  const leader = c.leader();
  expect(leader).not.toBe(0);
  expect(leader).not.toBe(1);
  c.propose(leader, "after");
  expect(c.appliedCommands(leader)).toContain("after");
}

function forged(fields: Partial<Message> & Pick<Message, "type" | "from" | "to">): Message {
  return {
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

describe("peer input: commit indexes are clamped, never fatal", () => {
  it("a heartbeat commit beyond the follower's last index is clamped to it (etcd handleHeartbeat: commitTo(min(m.Commit, lastIndex)))", () => {
    const c = runningCluster();
    const last = c.raft(2).raftLog.lastIndex();
    const term = c.raft(2).term;
    expect(() =>
      c.deliver(forged({ type: MessageType.Heartbeat, from: 1, to: 2, term, commit: 1e12 })),
    ).not.toThrow();
    expect(c.raft(2).raftLog.committed).toBe(last);
    c.stabilize();
    expectElectsAndCommits(c);
  });

  it("an append's commit beyond its last new entry commits only up to that entry (etcd maybeAppend: commitTo(min(committed, lastnewi)))", () => {
    const n = new LoneNode({ id: 2, voters: [1, 2, 3], logTerms: [1] });
    const out = n.step({
      type: MessageType.App,
      from: 1,
      term: 1,
      index: 1,
      logTerm: 1,
      entries: entriesWithTerms([1], 2),
      commit: 1e12,
    });
    expect(n.raft.raftLog.committed).toBe(2);
    expect(out.find((m) => m.type === MessageType.AppResp)?.index).toBe(2);
  });
});

describe("peer input: terms past the bound are dropped", () => {
  it("a heartbeat with term 2^53-1 is dropped: the term is never adopted nor persisted", () => {
    const c = runningCluster();
    const before = c.raft(2).term;
    c.deliver(
      forged({ type: MessageType.Heartbeat, from: 3, to: 2, term: Number.MAX_SAFE_INTEGER }),
    );
    c.stabilize();
    expect(c.raft(2).term).toBe(before);
    expect(c.node(2).storage.initialState().hardState.term).toBe(before);
    expectElectsAndCommits(c);
  });

  it("a term just above the bound is dropped; the bound itself is accepted", () => {
    const n = new LoneNode({ id: 2, voters: [1, 2, 3], logTerms: [1] });
    n.step({ type: MessageType.Heartbeat, from: 1, term: MAX_MESSAGE_TERM_OR_INDEX + 1 });
    expect(n.raft.term).toBe(1);
    n.step({ type: MessageType.Heartbeat, from: 1, term: MAX_MESSAGE_TERM_OR_INDEX });
    expect(n.raft.term).toBe(MAX_MESSAGE_TERM_OR_INDEX);
  });

  it("a node whose persisted term is at the bound does not campaign (no throw), but still follows", () => {
    const n = new LoneNode({
      id: 2,
      voters: [1, 2, 3],
      logTerms: [1],
      hardState: { term: MAX_MESSAGE_TERM_OR_INDEX },
    });
    expect(() => n.campaign()).not.toThrow();
    expect(n.raft.role).toBe("follower");
    expect(n.raft.term).toBe(MAX_MESSAGE_TERM_OR_INDEX);
    // Ticking past many election timeouts never throws either.
    for (let i = 0; i < 100; i++) n.raw.tick();
    expect(n.drain()).toEqual([]);
  });

  it("a peer message with term 0 (the core's mark of a local message) is ignored", () => {
    const n = new LoneNode({ id: 2, voters: [1, 2, 3], logTerms: [1, 1] });
    // With term 0 the term checks would be skipped and the append would truncate our log.
    n.step({
      type: MessageType.App,
      from: 1,
      term: 0,
      index: 0,
      logTerm: 0,
      entries: [{ term: 0, index: 1, type: 0, data: bytes("x") }],
    });
    expect(n.raft.raftLog.lastIndex()).toBe(2);
    expect(n.raft.lead).toBe(0);
  });
});

describe("peer input: malformed appends and responses are dropped", () => {
  it("an append whose entries do not follow its index is dropped (the log stays contiguous)", () => {
    const n = new LoneNode({ id: 2, voters: [1, 2, 3], logTerms: [1] });
    const out = n.step({
      type: MessageType.App,
      from: 1,
      term: 1,
      index: 1,
      logTerm: 1,
      entries: entriesWithTerms([1], 5),
    });
    expect(out).toEqual([]);
    expect(n.raft.raftLog.lastIndex()).toBe(1);
  });

  it("an append with entries of a term above the message's is dropped", () => {
    const n = new LoneNode({ id: 2, voters: [1, 2, 3], logTerms: [1] });
    n.step({
      type: MessageType.App,
      from: 1,
      term: 1,
      index: 1,
      logTerm: 1,
      entries: entriesWithTerms([7], 2),
    });
    expect(n.raft.raftLog.lastIndex()).toBe(1);
  });

  it("an append that would overwrite committed entries is answered with the commit index, not an invariant failure (etcd handleAppendEntries: m.Index < committed)", () => {
    const c = runningCluster();
    const committed = c.raft(2).raftLog.committed;
    expect(committed).toBeGreaterThanOrEqual(2);
    // A newer term (the message is not stale), matching at index 0, but different entries from
    // index 1 on.
    const term = c.raft(2).term + 1;
    const forgedEntries = [1, 2].map((index) => ({
      term,
      index,
      type: 0 as const,
      data: bytes("forged"),
    }));
    expect(() =>
      c.deliver(
        forged({
          type: MessageType.App,
          from: 1,
          to: 2,
          term,
          index: 0,
          logTerm: 0,
          entries: forgedEntries,
        }),
      ),
    ).not.toThrow();
    expect(c.raft(2).raftLog.committed).toBe(committed);
    c.stabilize();
    expect(c.appliedCommands(2)).toEqual(["a"]);
    expectElectsAndCommits(c);
  });

  it("an append response acknowledging past the leader's last index is dropped (no bogus match in the quorum)", () => {
    const c = runningCluster();
    const term = c.raft(1).term;
    const committed = c.raft(1).raftLog.committed;
    c.deliver(
      forged({ type: MessageType.AppResp, from: 2, to: 1, term, index: MAX_MESSAGE_TERM_OR_INDEX }),
    );
    expect(c.raft(1).trk.progress.get(2)?.match).toBeLessThanOrEqual(c.raft(1).raftLog.lastIndex());
    expect(c.raft(1).raftLog.committed).toBe(committed);
    c.propose(1, "b");
    expect(c.appliedCommands(2)).toEqual(["a", "b"]);
  });

  it("a snapshot with a malformed configuration is ignored, the log untouched", () => {
    const n = new LoneNode({ id: 2, voters: [1, 2, 3], logTerms: [1] });
    n.step({
      type: MessageType.Snap,
      from: 1,
      term: 2,
      snapshot: {
        metadata: {
          index: 10,
          term: 2,
          // 2 is both a voter and a learner: restoreConfState refuses it.
          confState: {
            voters: [1, 2],
            learners: [2],
            votersOutgoing: [],
            learnersNext: [],
            autoLeave: false,
          },
        },
        data: new Uint8Array(0),
      },
    });
    expect(n.raft.raftLog.lastIndex()).toBe(1);
    expect(n.raft.trk.voterNodes()).toEqual([1, 2, 3]);
  });

  it("a proposal forwarded without entries is dropped", () => {
    const c = runningCluster();
    expect(() =>
      c.deliver(forged({ type: MessageType.Prop, from: 2, to: 1, entries: [] })),
    ).not.toThrow();
    c.propose(1, "b");
    expect(c.appliedCommands(3)).toEqual(["a", "b"]);
  });
});
