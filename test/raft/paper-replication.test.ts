/**
 * Log replication and safety as the Raft paper states them (§5.3, §5.4), with the paper's
 * protocol (no pre-vote, no check-quorum) unless a test says otherwise. Each test names the rule
 * it checks and runs set up → act → check.
 */
import { assert, describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import { EntryType, type Entry, type NodeId } from "../../src/raft/types.js";
import { bytes, TestCluster, text } from "./cluster.js";
import {
  campaignUntilLeader,
  entriesWithTerms,
  isAppendRejection,
  LoneNode,
  MT,
  Network,
  PAPER_CONFIG,
  paperCluster,
  seedLog,
  stabilizeObserving,
  takeMessagesFrom,
} from "./scenario-helpers.js";

/** A follower (id 1, leader 2) whose log holds entries of `logTerms`, at term `term`. */
function follower(logTerms: readonly number[], term: number, commit = 0): LoneNode {
  return new LoneNode({
    id: 1,
    voters: [1, 2, 3],
    logTerms,
    hardState: { term, commit },
    config: PAPER_CONFIG,
  });
}

describe("§5.3 the leader replicates and commits", () => {
  // §5.3: "A log entry is committed once the leader that created the entry has replicated it on
  // a majority of the servers".
  it.each([
    { voters: 3, acking: [2], committed: true },
    { voters: 3, acking: [], committed: false },
    { voters: 5, acking: [2, 3], committed: true },
    { voters: 5, acking: [2], committed: false },
    { voters: 5, acking: [2, 3, 4, 5], committed: true },
  ])(
    "§5.3: of $voters voters, with followers $acking storing the entry, committed = $committed",
    ({ voters, acking, committed }) => {
      const ids = Array.from({ length: voters }, (_, i) => i + 1);
      const c = paperCluster(ids);
      const net = new Network(c);
      c.elect(1);
      const index = c.raft(1).raftLog.lastIndex() + 1;
      net.block = (m) => m.type === MT.App && !acking.includes(m.to);

      c.propose(1, "cmd");

      expect(c.raft(1).raftLog.lastIndex()).toBe(index);
      expect(c.raft(1).raftLog.committed >= index).toBe(committed);
      expect(c.appliedCommands(1)).toEqual(committed ? ["cmd"] : []);
    },
  );

  // §5.3: "Once a follower learns that a log entry is committed, it applies the entry to its local
  // state machine (in log order)."
  it("§5.3: followers apply entries in log order once the leader's commit index reaches them", () => {
    const c = paperCluster([1, 2, 3]);
    c.elect(1);

    for (const cmd of ["a", "b", "c"]) c.propose(1, cmd);

    for (const id of [1, 2, 3]) {
      expect(c.appliedCommands(id)).toEqual(["a", "b", "c"]);
      expect(c.raft(id).raftLog.committed).toBe(4);
    }
  });
});

describe("§5.3 the AppendEntries consistency check", () => {
  // The follower's log is [t1, t1, t3, t3] (indexes 1..4), its term 5.
  // §5.3: "If the follower does not find an entry in its log with the same index and term, then it
  // refuses the new entries." With a rejection it suggests where to probe next (fast back-off):
  // the largest index whose term is at most the leader's term at the probed index.
  it.each(
    [
      { index: 4, logTerm: 3, reject: false, hint: 0, hintTerm: 0, why: "matching last entry" },
      { index: 2, logTerm: 1, reject: false, hint: 0, hintTerm: 0, why: "matching earlier entry" },
      { index: 0, logTerm: 0, reject: false, hint: 0, hintTerm: 0, why: "empty prefix" },
      { index: 6, logTerm: 5, reject: true, hint: 4, hintTerm: 3, why: "index beyond the log" },
      {
        index: 4,
        logTerm: 2,
        reject: true,
        hint: 2,
        hintTerm: 1,
        why: "term mismatch: skip term 3",
      },
      { index: 3, logTerm: 4, reject: true, hint: 3, hintTerm: 3, why: "leader's term is newer" },
    ].map((row) => ({
      ...row,
      at: `${row.index}/${row.logTerm}`,
      outcome: row.reject ? `rejected, hint ${row.hint}/${row.hintTerm}` : "accepted",
    })),
  )(
    "§5.3: MsgApp after (index/term) $at — $why — $outcome",
    ({ index, logTerm, reject, hint, hintTerm }) => {
      const node = follower([1, 1, 3, 3], 5);

      const out = node.step({ type: MT.App, from: 2, term: 5, index, logTerm });

      const resp = out.find((m) => m.type === MT.AppResp);
      expect(resp).toMatchObject({ to: 2, term: 5, reject, index });
      if (reject) expect(resp).toMatchObject({ rejectHint: hint, logTerm: hintTerm });
      expect(node.logTerms()).toEqual([1, 1, 3, 3]);
    },
  );

  // §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete
  // the existing entry and all that follow it" (Figure 2, AppendEntries receiver step 3).
  it("§5.3: a conflicting suffix is deleted and replaced by the leader's entries", () => {
    const node = follower([1, 1, 2, 2, 2], 3);

    const out = node.step({
      type: MT.App,
      from: 2,
      term: 3,
      index: 2,
      logTerm: 1,
      entries: entriesWithTerms([3, 3], 3),
    });

    expect(out.find((m) => m.type === MT.AppResp)).toMatchObject({ reject: false, index: 4 });
    expect(node.logTerms()).toEqual([1, 1, 3, 3]);
  });

  // Figure 2, receiver step 3 deletes only on a conflict: entries the follower already has are
  // kept, so a delayed, shorter append cannot truncate what a later one added.
  it("Figure 2: an append whose entries are already present truncates nothing", () => {
    const node = follower([1, 1, 3, 3], 3);

    node.step({
      type: MT.App,
      from: 2,
      term: 3,
      index: 1,
      logTerm: 1,
      entries: entriesWithTerms([1], 2),
    });

    expect(node.logTerms()).toEqual([1, 1, 3, 3]);
  });

  // Figure 2, receiver step 5: "If leaderCommit > commitIndex, set commitIndex =
  // min(leaderCommit, index of last new entry)" — the follower cannot know that the entries after
  // the ones just checked match the leader's.
  it("Figure 2: a follower commits min(leaderCommit, index of the last new entry)", () => {
    const node = follower([1, 1, 1], 1);

    node.step({
      type: MT.App,
      from: 2,
      term: 1,
      index: 1,
      logTerm: 1,
      entries: entriesWithTerms([1], 2),
      commit: 3,
    });

    expect(node.raft.raftLog.committed).toBe(2);
    expect(node.raft.raftLog.lastIndex()).toBe(3);
  });
});

describe("§5.3 the leader brings a divergent follower's log in line with its own", () => {
  /**
   * Builds a follower (1, a crashed old leader) whose log has a suffix of uncommitted entries
   * from term 1 (indexes 4..8), while the cluster moved on to terms 2 and 3 (leader 3, last
   * index 15). Returns the cluster with 1 still down.
   */
  function divergentFollower(): { c: TestCluster; net: Network } {
    const c = paperCluster([1, 2, 3]);
    const net = new Network(c);
    c.elect(1);
    c.propose(1, "c2");
    c.propose(1, "c3");
    // 1 appends five entries that reach no one, then crashes.
    net.block = (m) => m.from === 1;
    for (let i = 4; i <= 8; i++) c.propose(1, `lost${i}`);
    c.crash(1);
    net.heal();
    // Term 2: 2 leads and commits ten entries with 3 (indexes 4..14).
    c.elect(2);
    for (let i = 5; i <= 14; i++) c.propose(2, `t2-${i}`);
    // Term 3: 3 takes over; its view of 1 starts optimistic, at its own last index.
    c.elect(3);
    expect(c.raft(3).raftLog.lastIndex()).toBe(15);
    expect(c.logEntries(1).map((e) => e.term)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    return { c, net };
  }

  // §5.3: "the leader handles inconsistencies by forcing the followers' logs to duplicate its own.
  // … the leader must find the latest log entry where the two logs agree, delete any entries in
  // the follower's log after that point, and send the follower all of the leader's entries after
  // that point."
  it("§5.3: after restart the old leader's uncommitted suffix is replaced and its log equals the leader's", () => {
    const { c } = divergentFollower();

    c.restart(1);
    c.tick(3, 1); // a heartbeat makes the leader probe 1
    c.stabilize();

    expect(c.logEntries(1)).toEqual(c.logEntries(3));
    expect(
      c
        .logEntries(1)
        .slice(3, 8)
        .map((e) => e.term),
    ).toEqual([2, 2, 2, 2, 2]);
    expect(c.appliedCommands(1)).not.toContain("lost4");
    expect(c.appliedCommands(1)).toEqual(c.appliedCommands(3));
  });

  // §5.3: "the protocol can be optimized to reduce the number of rejected AppendEntries RPCs …
  // the follower can include the term of the conflicting entry and the first index it stores for
  // that term. With this information, the leader can decrement nextIndex to bypass all of the
  // conflicting entries in that term".
  it("§5.3 (fast back-off): one rejection with a hint replaces the 11 probes of a one-index-at-a-time search", () => {
    const { c, net } = divergentFollower();
    net.clear();

    c.restart(1);
    c.tick(3, 1);
    c.stabilize();

    const rejections = net.messages((m) => isAppendRejection(m) && m.from === 1);
    // The leader first probes at its last index 14 (term 2); the follower's last entry is
    // (8, term 1): it hints 8/term 1, and the leader skips all its term-2 entries to index 3.
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toMatchObject({ index: 14, rejectHint: 8, logTerm: 1 });
    const probes = net.messages((m) => m.type === MT.App && m.to === 1 && m.from === 3);
    expect(probes[1]).toMatchObject({ index: 3, logTerm: 1 });
    expect(c.logEntries(1)).toEqual(c.logEntries(3));
  });
});

describe("§5.3 Figure 7: a new leader makes every kind of follower log match its own", () => {
  // Figure 7: the leader of term 8 has [1,1,1,4,4,5,5,6,6,6]; followers (a)–(f) are missing
  // entries, have extra uncommitted entries, or both.
  const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers = [
    { name: "(a) missing one entry", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6] },
    { name: "(b) missing many entries", terms: [1, 1, 1, 4] },
    { name: "(c) one extra entry of term 6", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6] },
    { name: "(d) two extra entries of term 7", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7] },
    { name: "(e) missing entries, extra of term 4", terms: [1, 1, 1, 4, 4, 4, 4] },
    { name: "(f) extra entries of terms 2 and 3", terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3] },
  ];

  // §5.3: "the leader handles inconsistencies by forcing the followers' logs to duplicate its
  // own." Node 3 holds the leader's log and gives it the vote it needs.
  it.each(followers)(
    "§5.3 Figure 7 $name: the follower ends with exactly the leader's log",
    ({ terms }) => {
      const c = paperCluster([1, 2, 3]);
      seedLog(c, { id: 1, terms: leaderTerms, term: 7 });
      seedLog(c, { id: 2, terms, term: 7 });
      seedLog(c, { id: 3, terms: leaderTerms, term: 7 });

      c.elect(1);

      expect(c.raft(1).role).toBe("leader");
      expect(c.raft(1).term).toBe(8);
      expect(c.logEntries(2).map((e) => e.term)).toEqual([...leaderTerms, 8]);
      expect(c.logEntries(2)).toEqual(c.logEntries(1));
      expect(c.raft(2).raftLog.committed).toBe(11);
    },
  );
});

describe("§5.3/§5.4.1 a leader overwrites uncommitted entries of a newer term", () => {
  // §5.3: conflicting entries in follower logs "will be overwritten with entries from the
  // leader's log". An entry of a newer term than the leader's own last entry is no exception when
  // it was never committed (etcd's TestLeaderElectionOverwriteNewerLogs).
  it("§5.2/§5.3: a candidate that loses to votes already cast wins the next term and overwrites a follower's newer uncommitted entry", () => {
    const c = paperCluster([1, 2, 3, 4, 5]);
    seedLog(c, { id: 1, terms: [1], term: 1 });
    seedLog(c, { id: 2, terms: [1], term: 1 });
    // 3 led term 2 with the votes of 4 and 5, and appended an entry that reached no one.
    seedLog(c, { id: 3, terms: [2], term: 2, vote: 3 });
    seedLog(c, { id: 4, terms: [], term: 2, vote: 3 });
    seedLog(c, { id: 5, terms: [], term: 2, vote: 3 });

    // Term 2: 2 grants, but 4 and 5 already voted in term 2 and 3's log is newer: three
    // rejections end the candidacy.
    c.elect(1);
    expect(c.raft(1).role).toBe("follower");
    expect(c.raft(1).term).toBe(2);

    // Term 3: 2, 4 and 5 vote for 1; 3 (last term 2) does not.
    c.elect(1);

    expect(c.raft(1).role).toBe("leader");
    expect(c.raft(1).term).toBe(3);
    for (const id of [1, 2, 3, 4, 5]) {
      expect(
        c.logEntries(id).map((e) => e.term),
        `node ${id}`,
      ).toEqual([1, 3]);
    }
  });
});

describe("§5.4.2 Figure 8: committing entries from previous terms", () => {
  /**
   * Figure 8 (a)–(c) with five servers. Terms are shifted by the election no-ops, but the
   * shape is the paper's:
   * (a) S1 leads term 1 and replicates "a" (index 2) to S2 only;
   * (b) S1 crashes; S5 is elected in term 2 by S3, S4, S5 and appends its own entry at index 2
   *     (its no-op), which reaches no one;
   * (c) S5 crashes; S1 restarts and is elected in term 3, and replicates "a" to S3, so "a" is
   *     on a majority (S1, S2, S3) — but its own term-3 entry reaches only S2.
   */
  function figure8UpToC(): { c: TestCluster; net: Network } {
    // One entry per append, so each entry travels (or is dropped) on its own.
    const c = paperCluster([1, 2, 3, 4, 5], { config: { maxSizePerMsgBytes: 1 } });
    const net = new Network(c);
    c.elect(1);

    // (a)
    net.block = (m) => m.from === 1 && m.type === MT.App && m.to !== 2;
    c.propose(1, "a");
    expect(c.raft(1).raftLog.committed).toBe(1);

    // (b)
    c.crash(1);
    net.block = (m) => m.from === 5 && m.type === MT.App;
    c.elect(5);
    expect(c.raft(5).role).toBe("leader");
    expect(c.raft(5).term).toBe(2);
    expect(c.logEntries(5).map((e) => e.term)).toEqual([1, 2]);

    // (c)
    c.crash(5);
    c.restart(1);
    net.block = (m) =>
      m.from === 1 &&
      m.type === MT.App &&
      (m.to === 4 ||
        m.to === 5 ||
        // S3 gets "a" but not the term-3 entry that would follow it.
        (m.to === 3 &&
          m.entries.some((e) => e.term === 3) &&
          c.raft(3).raftLog.matchTerm(m.index, m.logTerm)));
    campaignUntilLeader(c, 1);
    expect(c.raft(1).term).toBe(3);
    return { c, net };
  }

  // §5.4.2: "a leader cannot immediately conclude that an entry from a previous term is committed
  // once it is stored on a majority of servers." / "Raft never commits log entries from previous
  // terms by counting replicas."
  it("§5.4.2 Figure 8 (c)→(d): an old-term entry on a majority is not committed, and a later leader may rightly overwrite it", () => {
    const { c, net } = figure8UpToC();
    // (c): "a" (index 2, term 1) is on S1, S2, S3, and the leader knows it.
    for (const id of [1, 2, 3]) expect(c.raft(id).raftLog.term(2)).toBe(1);
    expect(c.raft(1).trk.committed()).toBeGreaterThanOrEqual(2);
    expect(c.raft(1).raftLog.committed).toBe(1);

    // (d): S1 crashes; S5 (last term 2) is elected by S3, S4 and itself and overwrites index 2.
    c.crash(1);
    c.restart(5);
    net.heal();
    campaignUntilLeader(c, 5);
    c.stabilize();

    for (const id of [2, 3, 4, 5]) {
      expect(c.raft(id).raftLog.term(2), `node ${id}`).toBe(2);
      expect(c.appliedCommands(id)).not.toContain("a");
    }
    expect(c.appliedCommands(1)).not.toContain("a");
  });

  // §5.4.2: "if S1 replicates an entry from its current term on a majority of the servers before
  // crashing, as in (e), then this entry is committed (S5 cannot win an election)."
  it("§5.4.2 Figure 8 (e): once the leader's current-term entry is on a majority, the old entry commits with it and S5 cannot win", () => {
    const { c, net } = figure8UpToC();

    // (e): the term-3 entry reaches S3 as well.
    net.heal();
    c.tick(1, 1); // a heartbeat round makes the leader retry what was dropped
    c.stabilize();
    expect(c.raft(1).raftLog.committed).toBe(3);
    expect(c.appliedCommands(1)).toEqual(["a"]);

    c.crash(1);
    c.restart(5);
    for (let attempt = 0; attempt < 5; attempt++) {
      c.elect(5);
      expect(c.raft(5).role).not.toBe("leader");
    }
    campaignUntilLeader(c, 2);
    c.stabilize();

    for (const id of [2, 3, 4, 5]) {
      expect(c.raft(id).raftLog.term(2), `node ${id}`).toBe(1);
      expect(c.appliedCommands(id), `node ${id}`).toEqual(["a"]);
    }
  });
});

describe("§5.4 Leader Completeness, State Machine Safety and the commit index", () => {
  // Figure 3, Leader Completeness: "If a log entry is committed in a given term, then that entry
  // will be present in the logs of the leaders for all higher-numbered terms."
  it("Figure 3: an entry committed without some followers is in the log of every later leader", () => {
    const c = paperCluster([1, 2, 3, 4, 5]);
    const net = new Network(c);
    c.elect(1);
    net.block = (m) => m.to === 4 || m.to === 5;
    c.propose(1, "x"); // committed by 1, 2, 3
    expect(c.raft(1).raftLog.committed).toBe(2);
    net.heal();
    c.crash(1);

    // 4 and 5 lack "x": 2 and 3 refuse them, so they cannot gather three votes.
    c.elect(4);
    expect(c.raft(4).role).not.toBe("leader");
    c.elect(5);
    expect(c.raft(5).role).not.toBe("leader");
    campaignUntilLeader(c, 3);

    for (const leader of [3]) expect(c.raft(leader).raftLog.term(2)).toBe(1);
    c.crash(3);
    c.restart(1);
    campaignUntilLeader(c, 2);
    expect(text(c.logEntries(2)[1]?.data ?? new Uint8Array())).toBe("x");
  });

  /**
   * Crashes, restarts, partitions, proposals and ticks drawn from `seed`, with the paper's
   * invariants checked along the way:
   * - Leader Completeness: an entry committed in term T is in the log of every leader of a term
   *   above T (T is the term of the node that first commits it, watched after every message);
   * - Log Matching / State Machine Safety: no two nodes commit different terms at one index, and
   *   every node's applied commands are a prefix of the longest;
   * - on every node the commit index never decreases and never passes its last index.
   * @returns how many distinct leader terms and committed entries the run saw.
   */
  function chaosRun(seed: number, config: object): { leaderTerms: number; committed: number } {
    const ids: NodeId[] = [1, 2, 3, 4, 5];
    const c = new TestCluster({ voters: ids, seed, config });
    const net = new Network(c);
    const rng = new SeededRandom(seed);
    /** index → the entry's term and the term in which it was first seen committed. */
    const committedAt = new Map<number, { term: number; commitTerm: number }>();
    const lastCommit = new Map<NodeId, number>();
    const leaderTerms = new Set<number>();
    let proposals = 0;
    let where = "";

    // After every message: commit indexes and newly committed entries.
    const watchCommits = (): void => {
      for (const id of ids) {
        if (!c.node(id).up) continue;
        const r = c.raft(id);
        const log = r.raftLog;
        const previous = lastCommit.get(id) ?? 0;
        // assert, not expect: this runs after every message and must stay cheap.
        assert(log.committed >= previous, `${where}: node ${id} commit decreased`);
        assert(log.committed <= log.lastIndex(), `${where}: node ${id} commit past last index`);
        for (let index = previous + 1; index <= log.committed; index++) {
          const term = log.term(index);
          const seen = committedAt.get(index);
          if (seen === undefined) committedAt.set(index, { term, commitTerm: r.term });
          else
            assert(term === seen.term, `${where}: node ${id} committed another entry at ${index}`);
        }
        lastCommit.set(id, log.committed);
      }
    };

    // After every action: leaders and applied sequences.
    const check = (): void => {
      for (const id of ids) {
        const r = c.raft(id);
        if (!c.node(id).up || r.role !== "leader") continue;
        leaderTerms.add(r.term);
        for (const [index, { term, commitTerm }] of committedAt) {
          if (commitTerm >= r.term) continue;
          assert(r.raftLog.termOrZero(index) === term, `${where}: leader ${id} lacks ${index}`);
        }
      }
      const applied = ids.map((id) => c.node(id).applied);
      const longest = applied.reduce((a, b) => (b.length > a.length ? b : a));
      for (const [i, list] of applied.entries()) {
        const isPrefix = list.every(
          (e, k) => e.index === longest[k]?.index && e.term === longest[k]?.term,
        );
        assert(isPrefix, `${where}: node ${i + 1} applied a different sequence`);
      }
    };

    for (let step = 0; step < 300; step++) {
      const action = rng.int(20);
      const up = ids.filter((id) => c.node(id).up);
      const down = ids.filter((id) => !c.node(id).up);
      if (action === 0 && down.length < 2) {
        c.crash(up[rng.int(up.length)] as NodeId);
      } else if (action === 1 && down.length > 0) {
        c.restart(down[rng.int(down.length)] as NodeId);
      } else if (action === 2) {
        const side = ids.filter(() => rng.int(2) === 0);
        net.partition(
          side,
          ids.filter((id) => !side.includes(id)),
        );
      } else if (action === 3) {
        net.heal();
      } else if (action <= 7) {
        const leader = c.leader();
        if (leader !== 0) {
          c.node(leader).raw.propose(bytes(`cmd-${proposals++}`));
        }
      } else {
        c.tick(undefined);
      }
      where = `seed ${seed} step ${step}`;
      stabilizeObserving(c, watchCommits);
      check();
    }
    return { leaderTerms: leaderTerms.size, committed: committedAt.size };
  }

  it.each([
    { name: "paper protocol", config: PAPER_CONFIG },
    { name: "pre-vote and check-quorum", config: {} },
  ])(
    "Figure 3 ($name): under seeded crashes, partitions and elections every leader holds every committed entry, and commit indexes only grow",
    ({ config }) => {
      let leaderTerms = 0;
      let committed = 0;
      for (let seed = 1; seed <= 5; seed++) {
        const run = chaosRun(seed, config);
        leaderTerms += run.leaderTerms;
        committed += run.committed;
      }
      // The runs must have exercised something: many terms and many committed entries.
      expect(leaderTerms).toBeGreaterThan(10);
      expect(committed).toBeGreaterThan(100);
    },
  );

  // The leader's heartbeat carries min(match, commit) (etcd): a follower that has not got the
  // committed entries yet must not set its commit index past its own log.
  it("Figure 2: a heartbeat tells a lagging follower at most its match index as commit, never past its last index", () => {
    const c = paperCluster([1, 2, 3]);
    const net = new Network(c);
    c.elect(1);
    net.block = (m) => m.type === MT.App && m.to === 3;
    for (const cmd of ["a", "b", "c"]) c.propose(1, cmd);
    expect(c.raft(1).raftLog.committed).toBe(4);
    expect(c.raft(3).raftLog.lastIndex()).toBe(1);
    net.block = (m) => m.type === MT.App || m.type === MT.AppResp;

    c.tick(1, 1);
    const heartbeats = takeMessagesFrom(c, 1).filter((m) => m.type === MT.Heartbeat);
    for (const hb of heartbeats) c.deliver(hb);
    c.stabilize();

    expect(heartbeats.find((m) => m.to === 2)?.commit).toBe(4);
    expect(heartbeats.find((m) => m.to === 3)?.commit).toBe(1);
    expect(c.raft(3).raftLog.committed).toBe(1);
    expect(c.raft(2).raftLog.committed).toBe(4);
  });

  // The commit index is monotonic: a stale or reordered append with a lower leaderCommit does not
  // lower it.
  it("Figure 2: a delayed append carrying an older commit index does not lower the follower's commit", () => {
    const node = follower([1, 1, 1, 1], 1, 3);
    const stale: Entry[] = [{ term: 1, index: 4, type: EntryType.Normal, data: bytes("e4") }];

    node.step({ type: MT.App, from: 2, term: 1, index: 3, logTerm: 1, entries: stale, commit: 1 });
    node.step({ type: MT.Heartbeat, from: 2, term: 1, commit: 2 });

    expect(node.raft.raftLog.committed).toBe(3);
  });
});
