/**
 * Pre-vote, check-quorum and the leader lease (Ongaro's thesis §4.2.3, §6.2, §9.6), and how a
 * stale leader learns of a newer term when votes alone would not tell it. Each test names the
 * rule it checks and runs set up → act → check.
 */
import { describe, expect, it } from "vitest";
import { message, NONE, type NodeId } from "../../src/raft/types.js";
import { TestCluster } from "./cluster.js";
import {
  deliverAndTakeAnswer,
  ELECTION_TICKS,
  LoneNode,
  MT,
  Network,
  PAPER_CONFIG,
  tickUntilLeader,
} from "./scenario-helpers.js";

/** A 3-node cluster led by 1, with a network recorder. Default config: pre-vote and check-quorum on. */
function ledBy1(config: object = {}): { c: TestCluster; net: Network; term: number } {
  const c = new TestCluster({ voters: [1, 2, 3], config });
  const net = new Network(c);
  c.elect(1);
  expect(c.leader()).toBe(1);
  net.clear();
  return { c, net, term: c.raft(1).term };
}

describe("thesis §9.6 pre-vote: a partitioned server does not disrupt the cluster when it rejoins", () => {
  // Thesis §9.6: "a candidate would first ask other servers whether its log was up-to-date enough
  // to get their vote. Only if the candidate believed it could get votes from a majority … would
  // it increment its term and start a normal election."
  it("thesis §9.6: an isolated follower keeps polling but its term never grows; after healing the leader and term stay", () => {
    const { c, net, term } = ledBy1();
    net.isolate(3);

    c.tickAndStabilize(10 * ELECTION_TICKS);

    expect(net.messages((m) => m.type === MT.PreVote && m.from === 3).length).toBeGreaterThan(0);
    expect(net.messages((m) => m.type === MT.Vote)).toEqual([]);
    expect(c.raft(3).term).toBe(term);

    net.heal();
    c.tickAndStabilize(2 * ELECTION_TICKS);

    expect(c.leader()).toBe(1);
    for (const id of [1, 2, 3]) {
      expect(c.raft(id).term).toBe(term);
      expect(c.raft(id).lead).toBe(1);
    }
  });

  // Thesis §9.6 (the problem pre-vote solves): "when the server rejoins the cluster, it will
  // likely force the leader to step down" — its term grew while it was cut off.
  it.each([
    { name: "no pre-vote, no check-quorum", config: PAPER_CONFIG },
    { name: "no pre-vote, check-quorum on", config: { preVote: false, checkQuorum: true } },
  ])(
    "thesis §9.6 ($name): the isolated follower's term grows, and rejoining deposes the leader",
    ({ config }) => {
      const { c, net, term } = ledBy1(config);
      net.isolate(3);

      c.tickAndStabilize(10 * ELECTION_TICKS);
      const isolatedTerm = c.raft(3).term;
      expect(isolatedTerm).toBeGreaterThan(term + 1);
      expect(c.raft(1).term).toBe(term);

      net.heal();
      c.tickAndStabilize(4 * ELECTION_TICKS);

      for (const id of [1, 2, 3]) expect(c.raft(id).term).toBeGreaterThanOrEqual(isolatedTerm);
      expect(c.leader()).not.toBe(NONE);
    },
  );

  // Thesis §9.6: the pre-vote asks about term+1 without moving to it; only winning the poll (a
  // majority of grants) starts the real election in term+1. A rejection from a server whose term
  // is newer still teaches that term (§5.1).
  it("thesis §9.6: granted pre-votes do not move the pre-candidate's term until a majority is reached", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3, 4, 5],
      logTerms: [1],
      config: { preVote: true, checkQuorum: false },
    });
    const requests = node.campaign();
    expect(requests.map((m) => [m.type, m.term])).toEqual([2, 3, 4, 5].map(() => [MT.PreVote, 2]));

    node.step({ type: MT.PreVoteResp, from: 2, term: 2 });
    expect(node.raft).toMatchObject({ role: "pre-candidate", term: 1 });

    const votes = node.step({ type: MT.PreVoteResp, from: 3, term: 2 });
    expect(node.raft).toMatchObject({ role: "candidate", term: 2, vote: 1 });
    expect(votes.filter((m) => m.type === MT.Vote)).toHaveLength(4);
  });

  it("thesis §9.6: a pre-vote rejection carrying a newer term turns the pre-candidate into a follower of that term", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1],
      config: { preVote: true, checkQuorum: false },
    });
    node.campaign();

    node.step({ type: MT.PreVoteResp, from: 2, term: 5, reject: true });

    expect(node.raft).toMatchObject({ role: "follower", term: 5, lead: NONE });
  });

  // Pre-vote must not stop a legitimate election: with the leader gone the poll succeeds.
  it("thesis §9.6: when the leader crashes, the followers' pre-vote succeeds and they elect a new leader", () => {
    const { c, term } = ledBy1();
    c.crash(1);

    const { leader } = tickUntilLeader(c, { maxTicks: 10 * ELECTION_TICKS });

    expect([2, 3]).toContain(leader);
    expect(c.raft(leader).term).toBeGreaterThan(term);
  });
});

describe("thesis §6.2 check-quorum: a leader that cannot reach a majority steps down", () => {
  /** Ticks only node 1, one tick at a time; returns the tick at which it stopped leading. */
  function ticksUntilStepDown(c: TestCluster, maxTicks: number): number | undefined {
    for (let tick = 1; tick <= maxTicks; tick++) {
      c.tick(1, 1);
      c.stabilize();
      if (c.raft(1).role !== "leader") return tick;
    }
    return undefined;
  }

  // Thesis §6.2: "a leader … steps down if an election timeout elapses without a successful round
  // of heartbeats to a majority of its cluster". Activity is checked once per election timeout,
  // so the step-down comes after more than one and at most two timeouts.
  it("thesis §6.2: an isolated leader steps down within two election timeouts; its term stays and it knows no leader", () => {
    const { c, net, term } = ledBy1();
    net.isolate(1);

    const stepDownTick = ticksUntilStepDown(c, 5 * ELECTION_TICKS);

    expect(stepDownTick).toBeDefined();
    expect(stepDownTick).toBeGreaterThan(ELECTION_TICKS - 1);
    expect(stepDownTick).toBeLessThanOrEqual(2 * ELECTION_TICKS);
    expect(c.raft(1).role).toBe("follower");
    expect(c.raft(1).term).toBe(term);
    expect(c.raft(1).lead).toBe(NONE);
  });

  it("thesis §6.2: a leader that hears from a majority keeps leading, even with one follower cut off", () => {
    const { c, net } = ledBy1();
    net.isolate(3);

    const stepDownTick = ticksUntilStepDown(c, 5 * ELECTION_TICKS);

    expect(stepDownTick).toBeUndefined();
  });

  it("thesis §6.2 (contrast): without check-quorum an isolated leader keeps leading indefinitely", () => {
    const { c, net } = ledBy1({ checkQuorum: false });
    net.isolate(1);

    const stepDownTick = ticksUntilStepDown(c, 10 * ELECTION_TICKS);

    expect(stepDownTick).toBeUndefined();
  });
});

describe("thesis §4.2.3 the leader lease: servers that hear from a leader ignore vote requests", () => {
  /** A vote request from 3 for the next term, with a log as up to date as anyone's. */
  function voteRequestFrom3(c: TestCluster, to: NodeId, term: number): ReturnType<typeof message> {
    const log = c.raft(3).raftLog;
    return message({
      type: MT.Vote,
      from: 3,
      to,
      term: term + 1,
      index: log.lastIndex(),
      logTerm: log.lastTerm(),
    });
  }

  // Thesis §4.2.3: "if a server receives a RequestVote request within the minimum election
  // timeout of hearing from a current leader, it does not update its term or grant its vote."
  it("thesis §4.2.3: a follower and the leader within the lease neither answer nor adopt the higher term", () => {
    const { c, term } = ledBy1();

    const followerAnswer = deliverAndTakeAnswer(c, voteRequestFrom3(c, 2, term));
    const leaderAnswer = deliverAndTakeAnswer(c, voteRequestFrom3(c, 1, term));

    expect(followerAnswer).toEqual([]);
    expect(leaderAnswer).toEqual([]);
    expect(c.raft(2).term).toBe(term);
    expect(c.raft(2).lead).toBe(1);
    expect(c.raft(1).role).toBe("leader");
    expect(c.raft(1).term).toBe(term);
  });

  it("thesis §4.2.3: once a follower has not heard from the leader for an election timeout, it grants the vote", () => {
    const { c, net, term } = ledBy1();
    net.isolate(2);
    c.tick(2, ELECTION_TICKS);
    c.stabilize();
    net.heal();

    const answer = deliverAndTakeAnswer(c, voteRequestFrom3(c, 2, term));

    expect(answer).toContainEqual(
      expect.objectContaining({ type: MT.VoteResp, to: 3, term: term + 1, reject: false }),
    );
    expect(c.raft(2).term).toBe(term + 1);
    expect(c.raft(2).vote).toBe(3);
  });
});

describe("§5.1 with check-quorum or pre-vote, a stale leader is told the newer term", () => {
  /**
   * Cuts leader 1 off, lets 2 and 3 elect a new leader (1 is not ticked, so it keeps leading its
   * old term), then heals, except that the new leader's own messages to 1 stay blocked: only the
   * answers to 1's messages can tell it about the new term.
   */
  function staleLeader(config: object): { c: TestCluster; net: Network; oldTerm: number } {
    const { c, net, term } = ledBy1(config);
    net.partition([1], [2, 3]);
    let newLeader: NodeId = NONE;
    for (let tick = 0; tick < 20 * ELECTION_TICKS && newLeader === NONE; tick++) {
      c.tick(2, 1);
      c.tick(3, 1);
      c.stabilize();
      newLeader = [2, 3].find((id) => c.raft(id).role === "leader") ?? NONE;
    }
    expect(newLeader).not.toBe(NONE);
    expect(c.raft(1).role).toBe("leader");
    expect(c.raft(1).term).toBe(term);
    net.block = (m) => m.from === newLeader && m.to === 1;
    net.clear();
    return { c, net, oldTerm: term };
  }

  // §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts
  // to follower state." With check-quorum or pre-vote, followers ignore the stale leader's vote
  // traffic, so they must answer its stale appends with their term (etcd does the same).
  it.each([
    { name: "pre-vote and check-quorum", config: {} },
    { name: "pre-vote only", config: { checkQuorum: false } },
    { name: "check-quorum only", config: { preVote: false } },
  ])(
    "§5.1 ($name): a stale heartbeat is answered with the newer term, which deposes the stale leader",
    ({ config }) => {
      const { c, net, oldTerm } = staleLeader(config);

      c.tick(1, 1);
      c.stabilize();

      const answers = net.messages((m) => m.type === MT.AppResp && m.to === 1);
      expect(answers.length).toBeGreaterThan(0);
      for (const m of answers) expect(m.term).toBeGreaterThan(oldTerm);
      expect(c.raft(1).role).toBe("follower");
      expect(c.raft(1).term).toBeGreaterThan(oldTerm);
    },
  );

  // The paper's protocol ignores stale requests (the next vote request or append of the new
  // leader teaches the term instead).
  it("§5.1 (paper protocol): a stale heartbeat is ignored and the stale leader keeps its role until it hears the new term", () => {
    const { c, net, oldTerm } = staleLeader(PAPER_CONFIG);

    c.tick(1, 1);
    c.stabilize();

    expect(net.messages((m) => m.to === 1)).toEqual([]);
    expect(c.raft(1).role).toBe("leader");
    expect(c.raft(1).term).toBe(oldTerm);
  });
});
