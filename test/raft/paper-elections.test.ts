/**
 * Leader election as the Raft paper (§5.1, §5.2, §5.4.1, §8) states it. Each test names the rule
 * it checks and runs set up → act → check. The paper's protocol has neither pre-vote nor
 * check-quorum, so most tests turn both off (PAPER_CONFIG); those features have their own file.
 */
import { describe, expect, it } from "vitest";
import { EntryType, MessageType, NONE, type Message, type NodeId } from "../../src/raft/types.js";
import { TestCluster } from "./cluster.js";
import {
  ELECTION_TICKS,
  LoneNode,
  MT,
  Network,
  PAPER_CONFIG,
  paperCluster,
  stabilizeObserving,
  tickUntilLeader,
} from "./scenario-helpers.js";

/** A vote response in `messages` addressed to `to`, or undefined. */
function voteResponseTo(messages: readonly Message[], to: NodeId): Message | undefined {
  return messages.find((m) => (m.type === MT.VoteResp || m.type === MT.PreVoteResp) && m.to === to);
}

describe("§5.2 each server votes for at most one candidate in a given term", () => {
  function voterAtTerm1(): LoneNode {
    return new LoneNode({ id: 1, voters: [1, 2, 3], logTerms: [1], config: PAPER_CONFIG });
  }

  // §5.2: "Each server will vote for at most one candidate in a given term, on a
  // first-come-first-served basis."
  it("§5.2: grants the first candidate of a term and rejects a second candidate of the same term", () => {
    const voter = voterAtTerm1();

    const first = voter.step({ type: MT.Vote, from: 2, term: 2, index: 1, logTerm: 1 });
    const second = voter.step({ type: MT.Vote, from: 3, term: 2, index: 1, logTerm: 1 });

    expect(voteResponseTo(first, 2)).toMatchObject({ type: MT.VoteResp, term: 2, reject: false });
    expect(voteResponseTo(second, 3)).toMatchObject({ type: MT.VoteResp, reject: true });
    expect(voter.raft.vote).toBe(2);
    expect(voter.raft.term).toBe(2);
  });

  // §5.2 / Figure 2 (RequestVote receiver, step 2): "If votedFor is null or candidateId … grant
  // vote": a candidate whose grant was lost asks again and must get the same answer.
  it("§5.2: a repeated request from the candidate it already voted for is granted again", () => {
    const voter = voterAtTerm1();
    voter.step({ type: MT.Vote, from: 2, term: 2, index: 1, logTerm: 1 });

    const repeated = voter.step({ type: MT.Vote, from: 2, term: 2, index: 1, logTerm: 1 });

    expect(voteResponseTo(repeated, 2)).toMatchObject({
      type: MT.VoteResp,
      term: 2,
      reject: false,
    });
    expect(voter.raft.vote).toBe(2);
  });

  // Figure 2 ("Persistent state on all servers: currentTerm, votedFor"): the vote survives a
  // crash, so a restarted voter cannot vote twice in one term.
  it("Figure 2: the vote is durable; after a restart the voter still refuses another candidate of that term", () => {
    const voter = voterAtTerm1();
    voter.step({ type: MT.Vote, from: 2, term: 2, index: 1, logTerm: 1 });

    voter.restart();
    const other = voter.step({ type: MT.Vote, from: 3, term: 2, index: 1, logTerm: 1 });
    const same = voter.step({ type: MT.Vote, from: 2, term: 2, index: 1, logTerm: 1 });

    expect(voter.raft.term).toBe(2);
    expect(voteResponseTo(other, 3)?.reject).toBe(true);
    expect(voteResponseTo(same, 2)?.reject).toBe(false);
  });

  // §5.2: a new term starts a new ballot: the vote of an older term does not bind the voter.
  it("§5.2: a vote cast in one term does not stop the voter from voting for someone else in a later term", () => {
    const voter = voterAtTerm1();
    voter.step({ type: MT.Vote, from: 2, term: 2, index: 1, logTerm: 1 });

    const later = voter.step({ type: MT.Vote, from: 3, term: 3, index: 1, logTerm: 1 });

    expect(voteResponseTo(later, 3)).toMatchObject({ term: 3, reject: false });
    expect(voter.raft.vote).toBe(3);
  });

  // §5.2: "A candidate wins an election if it receives votes from a majority of the servers in
  // the full cluster for the same term." A majority of rejections ends the candidacy.
  it.each([
    { voters: [1, 2, 3], grants: [2], rejects: [], role: "leader" },
    { voters: [1, 2, 3], grants: [], rejects: [2], role: "candidate" },
    { voters: [1, 2, 3], grants: [], rejects: [2, 3], role: "follower" },
    { voters: [1, 2, 3, 4, 5], grants: [2, 3], rejects: [], role: "leader" },
    { voters: [1, 2, 3, 4, 5], grants: [2], rejects: [3, 4], role: "candidate" },
    { voters: [1, 2, 3, 4, 5], grants: [2], rejects: [3, 4, 5], role: "follower" },
  ])(
    "§5.2: a candidate of $voters.length voters with grants $grants and rejections $rejects ends as $role",
    ({ voters, grants, rejects, role }) => {
      const node = new LoneNode({ id: 1, voters, config: PAPER_CONFIG });
      node.campaign();
      const term = node.raft.term;

      for (const from of grants) node.step({ type: MT.VoteResp, from, term });
      for (const from of rejects) node.step({ type: MT.VoteResp, from, term, reject: true });

      expect(node.raft.role).toBe(role);
      expect(node.raft.term).toBe(term);
    },
  );
});

describe("§5.4.1 the voter denies its vote if its own log is more up-to-date than the candidate's", () => {
  // The voter's log: terms [1, 1, 2], so its last entry is (index 3, term 2).
  // §5.4.1: "If the logs have last entries with different terms, then the log with the later term
  // is more up-to-date. If the logs end with the same term, then whichever log is longer is more
  // up-to-date."
  const table = [
    { lastTerm: 0, lastIndex: 0, granted: false, why: "empty log" },
    { lastTerm: 1, lastIndex: 3, granted: false, why: "lower last term, same length" },
    { lastTerm: 1, lastIndex: 9, granted: false, why: "lower last term, longer log" },
    { lastTerm: 2, lastIndex: 2, granted: false, why: "same last term, shorter log" },
    { lastTerm: 2, lastIndex: 3, granted: true, why: "identical last entry" },
    { lastTerm: 2, lastIndex: 4, granted: true, why: "same last term, longer log" },
    { lastTerm: 3, lastIndex: 1, granted: true, why: "higher last term, shorter log" },
  ];
  const cases = table.map((row) => ({ ...row, last: `${row.lastIndex}/${row.lastTerm}` }));

  it.each(cases)(
    "§5.4.1: RequestVote with last entry (index/term) $last — $why — granted: $granted",
    ({ lastTerm, lastIndex, granted }) => {
      const voter = new LoneNode({
        id: 1,
        voters: [1, 2, 3],
        logTerms: [1, 1, 2],
        config: PAPER_CONFIG,
      });

      const out = voter.step({
        type: MT.Vote,
        from: 2,
        term: 3,
        index: lastIndex,
        logTerm: lastTerm,
      });

      expect(voteResponseTo(out, 2)?.reject).toBe(!granted);
      expect(voter.raft.vote).toBe(granted ? 2 : NONE);
      // Either way the voter adopts the candidate's newer term (§5.1).
      expect(voter.raft.term).toBe(3);
    },
  );

  // Thesis §9.6: a pre-vote is granted only if the candidate's log is up to date, by the same rule.
  it.each(cases)(
    "thesis §9.6: PreVote with last entry (index/term) $last — $why — granted: $granted, and no term or vote changes",
    ({ lastTerm, lastIndex, granted }) => {
      const voter = new LoneNode({
        id: 1,
        voters: [1, 2, 3],
        logTerms: [1, 1, 2],
        config: { preVote: true, checkQuorum: false },
      });

      const out = voter.step({
        type: MT.PreVote,
        from: 2,
        term: 3,
        index: lastIndex,
        logTerm: lastTerm,
      });

      expect(voteResponseTo(out, 2)).toMatchObject({ type: MT.PreVoteResp, reject: !granted });
      expect(voter.raft.term).toBe(2);
      expect(voter.raft.vote).toBe(NONE);
    },
  );

  // §5.4.1, in a cluster: "a candidate must contact a majority of the cluster in order to be
  // elected, which means that every committed entry must be present in at least one of those
  // servers" — a node that missed a committed entry cannot be elected.
  it("§5.4.1: a node missing a committed entry cannot win while the majority that stored it votes", () => {
    const c = paperCluster([1, 2, 3]);
    const net = new Network(c);
    c.elect(1);
    net.block = (m) => m.to === 3 || m.from === 3;
    c.propose(1, "committed-without-3");
    expect(c.raft(1).raftLog.committed).toBe(2);
    net.heal();
    c.crash(1);

    c.elect(3);

    expect(c.raft(3).role).not.toBe("leader");
    expect(c.raft(2).vote).not.toBe(3);
  });
});

describe("§5.2 split votes are resolved by randomized election timeouts", () => {
  // §5.2: "Raft uses randomized election timeouts … chosen randomly from a fixed interval".
  it("§5.2: each node draws its election timeout from [T, 2T), and not all draw the same", () => {
    const c = paperCluster([1, 2, 3, 4, 5]);

    const timeouts = [1, 2, 3, 4, 5].map(
      (id) => c.raft(id).electionState().randomizedElectionTimeoutTicks,
    );

    for (const t of timeouts) {
      expect(t).toBeGreaterThanOrEqual(ELECTION_TICKS);
      expect(t).toBeLessThan(2 * ELECTION_TICKS);
    }
    expect(new Set(timeouts).size).toBeGreaterThan(1);
  });

  /** Two of four nodes campaign at once and each gets exactly one other vote: nobody wins. */
  function splitVote(seed: number): { c: TestCluster; net: Network } {
    const c = paperCluster([1, 2, 3, 4], { seed });
    const net = new Network(c);
    net.block = (m) =>
      m.type === MessageType.Vote && ((m.from === 1 && m.to === 4) || (m.from === 2 && m.to === 3));
    c.node(1).raw.campaign();
    c.node(2).raw.campaign();
    c.stabilize();
    net.heal();
    return { c, net };
  }

  // §5.2: "if many followers become candidates at the same time, votes could be split so that no
  // candidate obtains a majority. When this happens, each candidate will time out and start a new
  // election by incrementing its term".
  it("§5.2: after a split vote no one leads; the candidates time out and a later term elects exactly one leader", () => {
    const { c } = splitVote(1);
    expect(c.leader()).toBe(NONE);
    expect(c.raft(1).role).toBe("candidate");
    expect(c.raft(2).role).toBe("candidate");
    expect(c.raft(1).term).toBe(1);
    expect(c.raft(2).term).toBe(1);

    const leadersByTerm = new Map<number, Set<NodeId>>();
    const recordLeaders = (): void => {
      for (const id of [1, 2, 3, 4]) {
        const r = c.raft(id);
        if (r.role !== "leader") continue;
        const set = leadersByTerm.get(r.term) ?? new Set<NodeId>();
        set.add(id);
        leadersByTerm.set(r.term, set);
      }
    };
    const { leader } = tickUntilLeader(c, { maxTicks: 10 * ELECTION_TICKS, onTick: recordLeaders });

    expect(c.raft(leader).term).toBeGreaterThan(1);
    for (const id of [1, 2, 3, 4]) expect(c.raft(id).lead).toBe(leader);
    // Election Safety (Figure 3): at most one leader in a given term.
    for (const set of leadersByTerm.values()) expect(set.size).toBe(1);
  });

  // The same, over many seeds: randomization makes repeated splits unlikely, so an election
  // finishes within a few timeouts whatever the seed.
  it("§5.2: over 30 seeds, a split vote is always resolved within 10 election timeouts", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { c } = splitVote(seed);
      expect(c.leader(), `seed ${seed}`).toBe(NONE);

      const { leader } = tickUntilLeader(c, { maxTicks: 10 * ELECTION_TICKS });

      const leaders = [1, 2, 3, 4].filter((id) => c.raft(id).role === "leader");
      expect(leaders, `seed ${seed}`).toEqual([leader]);
    }
  });
});

describe("§8 a new leader commits a no-op entry of its term", () => {
  // §8: "each leader commit[s] a blank no-op entry into the log at the start of its term".
  it("§8: the new leader appends an empty Normal entry of its own term right after its log, and commits it", () => {
    const c = paperCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, "a");
    const lastBefore = c.raft(2).raftLog.lastIndex();

    c.node(2).raw.campaign();
    c.stabilize();

    const term = c.raft(2).term;
    expect(term).toBe(2);
    const noop = c.logEntries(2).at(-1);
    expect(noop).toMatchObject({ index: lastBefore + 1, term, type: EntryType.Normal });
    expect(noop?.data.length).toBe(0);
    for (const id of [1, 2, 3]) expect(c.raft(id).raftLog.committed).toBe(lastBefore + 1);
  });

  // §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
  // entries from the leader's current term are committed by counting replicas; once an entry from
  // the current term has been committed …, then all prior entries are committed indirectly".
  // Combined with §8, a new leader commits an inherited entry only through its no-op.
  it("§5.4.2/§8: an inherited entry on a majority stays uncommitted until the leader's no-op reaches a majority", () => {
    // One entry per append, so the inherited entry and the no-op travel in separate messages.
    const c = paperCluster([1, 2, 3], { config: { maxSizePerMsgBytes: 1 } });
    const net = new Network(c);
    c.elect(1);
    // "x" (index 2, term 1) reaches 2, but 1 never hears the acknowledgement: uncommitted.
    net.block = (m) => (m.type === MT.App && m.to === 3) || (m.type === MT.AppResp && m.from === 2);
    c.propose(1, "x");
    expect(c.raft(1).raftLog.committed).toBe(1);
    net.heal();
    c.crash(1);

    const seen: { committed: number; quorumMatch: number }[] = [];
    c.node(2).raw.campaign();
    stabilizeObserving(c, () => {
      const r = c.raft(2);
      if (r.role === "leader") {
        seen.push({ committed: r.raftLog.committed, quorumMatch: r.trk.committed() });
      }
    });

    // At some point "x" was on a majority (2 and 3) while the no-op was not: still uncommitted.
    expect(seen).toContainEqual({ committed: 1, quorumMatch: 2 });
    // Never committed at 2 alone: the commit index jumped from 1 to the no-op at 3.
    expect(seen.map((s) => s.committed)).not.toContain(2);
    expect(c.raft(2).raftLog.committed).toBe(3);
    expect(c.appliedCommands(3)).toEqual(["x"]);
  });
});

describe("§5.2 heartbeats keep followers from starting elections", () => {
  // §5.2: "A server remains in follower state as long as it receives valid RPCs from a leader or
  // candidate. Leaders send periodic heartbeats … to all followers in order to maintain their
  // authority."
  it.each([
    { name: "paper protocol", config: PAPER_CONFIG },
    { name: "pre-vote and check-quorum", config: {} },
  ])(
    "§5.2 ($name): with a healthy leader, 10 election timeouts of ticks start no election",
    ({ config }) => {
      const c = new TestCluster({ voters: [1, 2, 3], config });
      c.elect(1);
      const term = c.raft(1).term;
      const net = new Network(c);

      c.tickAndStabilize(10 * ELECTION_TICKS);

      expect(net.messages((m) => m.type === MT.Heartbeat).length).toBeGreaterThan(0);
      expect(net.messages((m) => m.type === MT.Vote || m.type === MT.PreVote)).toEqual([]);
      for (const id of [1, 2, 3]) {
        expect(c.raft(id).term).toBe(term);
        expect(c.raft(id).lead).toBe(1);
      }
    },
  );

  // §5.2: "If a follower receives no communication over a period of time called the election
  // timeout, then it assumes there is no viable leader and begins an election".
  it("§5.2: when the leader's heartbeats stop arriving, a follower campaigns within two election timeouts", () => {
    const c = paperCluster([1, 2, 3]);
    c.elect(1);
    const net = new Network(c);
    net.block = (m) => m.from === 1;

    c.tickAndStabilize(2 * ELECTION_TICKS);

    expect(net.messages((m) => m.type === MT.Vote).length).toBeGreaterThan(0);
    expect(Math.max(c.raft(2).term, c.raft(3).term)).toBeGreaterThan(1);
  });
});

describe("§5.1 current terms are exchanged in every communication", () => {
  type Role = "follower" | "candidate" | "pre-candidate" | "leader";

  /** A node of voters 1..3 in `role`, at term 1 or 2. */
  function nodeIn(role: Role): LoneNode {
    const preVote = role === "pre-candidate";
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1],
      config: { preVote, checkQuorum: false },
    });
    if (role === "candidate" || role === "pre-candidate") node.campaign();
    if (role === "leader") node.becomeLeader();
    expect(node.raft.role).toBe(role);
    return node;
  }

  // §5.1: "If one server's current term is smaller than the other's, then it updates its current
  // term to the larger value. If a candidate or leader discovers that its term is out of date, it
  // immediately reverts to follower state."
  const roles: Role[] = ["follower", "pre-candidate", "candidate", "leader"];
  const types = [
    { name: "MsgApp", type: MT.App, from: 2, lead: 2 },
    { name: "MsgHeartbeat", type: MT.Heartbeat, from: 2, lead: 2 },
    { name: "MsgVote", type: MT.Vote, from: 3, lead: NONE },
  ] as const;
  it.each(roles.flatMap((role) => types.map((t) => ({ role, ...t }))))(
    "§5.1: a $role that receives $name of a higher term adopts the term and becomes a follower",
    ({ role, type, from, lead }) => {
      const node = nodeIn(role);
      const newTerm = node.raft.term + 1;
      const last = node.raft.raftLog.lastIndex();
      const lastTerm = node.raft.raftLog.lastTerm();

      node.step({
        type,
        from,
        term: newTerm,
        index: type === MT.Heartbeat ? 0 : last,
        logTerm: type === MT.Heartbeat ? 0 : lastTerm,
      });

      expect(node.raft.role).toBe("follower");
      expect(node.raft.term).toBe(newTerm);
      expect(node.raft.lead).toBe(lead);
    },
  );

  // §5.2: "If the AppendEntries RPC is from a leader whose term is at least as large as the
  // candidate's current term, then the candidate recognizes the leader as legitimate and returns
  // to follower state."
  it("§5.2: a candidate that receives AppendEntries of its own term returns to follower and follows the sender", () => {
    const node = nodeIn("candidate");
    const term = node.raft.term;

    node.step({ type: MT.App, from: 2, term, index: 1, logTerm: 1 });

    expect(node.raft.role).toBe("follower");
    expect(node.raft.term).toBe(term);
    expect(node.raft.lead).toBe(2);
  });

  // §5.1: "If a server receives a request with a stale term number, it rejects the request."
  it("§5.1: a request with a stale term changes neither term, vote, log nor leader, and is not granted", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1],
      hardState: { term: 3 },
      config: PAPER_CONFIG,
    });

    const voteOut = node.step({ type: MT.Vote, from: 2, term: 2, index: 5, logTerm: 2 });
    const appOut = node.step({
      type: MT.App,
      from: 3,
      term: 2,
      index: 1,
      logTerm: 1,
      entries: [{ term: 2, index: 2, type: EntryType.Normal, data: new Uint8Array([1]) }],
      commit: 2,
    });

    expect(voteOut.filter((m) => m.type === MT.VoteResp && !m.reject)).toEqual([]);
    expect(appOut.filter((m) => m.type === MT.AppResp && m.index > 0)).toEqual([]);
    expect(node.raft.term).toBe(3);
    expect(node.raft.vote).toBe(NONE);
    expect(node.raft.lead).toBe(NONE);
    expect(node.raft.raftLog.lastIndex()).toBe(1);
    expect(node.raft.raftLog.committed).toBe(0);
  });
});
