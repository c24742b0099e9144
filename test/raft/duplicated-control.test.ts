/**
 * The peer transport sends votes, pre-votes, heartbeats and their answers on both connections of
 * a pair (peer protocol 3, `src/transport/duplex-path.ts`) and as datagrams
 * (`src/transport/datagram-channel.ts`), so each of them may arrive more than once.
 * Raft tolerates duplicated messages (the paper, §5.1: "if [RPCs] do not receive a response in a
 * timely manner they are retried" — every RPC is idempotent); these tests pin the rule for each
 * kind that is now duplicated on purpose: a second copy changes nothing the first did not.
 */
import { describe, expect, it } from "vitest";
import { MessageType, Role, type Message } from "../../src/raft/types.js";
import { isDuplexType } from "../../src/transport/duplex-path.js";
import { bytes, TestCluster } from "./cluster.js";

/** Takes the queued messages of `type` from `from` to `to` (and leaves the rest queued). */
function take(c: TestCluster, type: number, from: number, to: number): Message[] {
  const taken = c.queue.filter((m) => m.type === type && m.from === from && m.to === to);
  c.queue = c.queue.filter((m) => !taken.includes(m));
  return taken;
}

/** Delivers `m` twice, as when both connections of the pair carry it. */
function deliverTwice(c: TestCluster, m: Message | undefined): void {
  expect(m).toBeDefined();
  c.deliver(m!);
  c.deliver(m!);
}

describe("duplicated control messages change nothing the first copy did not", () => {
  it("logs a vote cast, a vote rejected and a tally once however many copies arrive (datagrams make three)", () => {
    const lines: string[] = [];
    const logger = {
      debug: () => undefined,
      info: (message: string) => lines.push(message),
      warn: (message: string) => lines.push(message),
    };
    const c = new TestCluster({ voters: [1, 2, 3, 4, 5], config: { preVote: false, logger } });
    c.node(1).raw.campaign();
    c.processReady(1);
    const request = take(c, MessageType.Vote, 1, 2)[0]!;
    for (let i = 0; i < 3; i++) c.deliver(request);
    c.processReady(2);
    const grants = take(c, MessageType.VoteResp, 2, 1);
    expect(grants).toHaveLength(3); // every copy is still answered
    expect(lines.filter((l) => l === "cast vote")).toHaveLength(1);
    for (const m of grants) c.deliver(m);
    // Itself and node 2: 2 of 5, still a candidate, with one tally in the log.
    expect(c.raft(1).role).toBe(Role.Candidate);
    expect(lines.filter((l) => l === "vote tally")).toHaveLength(1);
    // Node 3 heard node 2's grant too late: a vote for another candidate, rejected once.
    const late = { ...request, from: 3, to: 2 };
    for (let i = 0; i < 3; i++) c.deliver(late);
    expect(lines.filter((l) => l === "rejected vote")).toHaveLength(1);
  });

  it("a vote response delivered twice counts once in the candidate's tally (§5.2: a majority of distinct servers)", () => {
    const c = new TestCluster({ voters: [1, 2, 3, 4, 5], config: { preVote: false } });
    c.node(1).raw.campaign();
    c.processReady(1);
    deliverTwice(c, take(c, MessageType.Vote, 1, 2)[0]);
    c.processReady(2);
    const grants = take(c, MessageType.VoteResp, 2, 1);
    // The voter answered each copy, both times for the same candidate.
    expect(grants.map((m) => m.reject)).toEqual([false, false]);
    expect(c.raft(2).vote).toBe(1);
    for (const m of grants) deliverTwice(c, m);
    // Itself and node 2, four copies of one grant among them: 2 of 5, not a majority.
    expect(c.raft(1).role).toBe(Role.Candidate);
    c.deliver(take(c, MessageType.Vote, 1, 3)[0]!);
    c.processReady(3);
    c.deliver(take(c, MessageType.VoteResp, 3, 1)[0]!);
    expect(c.raft(1).role).toBe(Role.Leader);
  });

  it("a pre-vote response delivered twice counts once (thesis §9.6)", () => {
    const c = new TestCluster({ voters: [1, 2, 3, 4, 5], config: { preVote: true } });
    c.node(1).raw.campaign();
    c.processReady(1);
    deliverTwice(c, take(c, MessageType.PreVote, 1, 2)[0]);
    c.processReady(2);
    for (const m of take(c, MessageType.PreVoteResp, 2, 1)) deliverTwice(c, m);
    expect(c.raft(1).role).toBe(Role.PreCandidate);
    c.deliver(take(c, MessageType.PreVote, 1, 3)[0]!);
    c.processReady(3);
    c.deliver(take(c, MessageType.PreVoteResp, 3, 1)[0]!);
    expect(c.raft(1).role).toBe(Role.Candidate);
  });

  it("a vote request delivered twice is granted twice to the same candidate, and no other candidate gets the vote (§5.2: at most one vote per term)", () => {
    const c = new TestCluster({ voters: [1, 2, 3], config: { preVote: false } });
    c.node(1).raw.campaign();
    c.processReady(1);
    const request = take(c, MessageType.Vote, 1, 3)[0];
    deliverTwice(c, request);
    c.processReady(3);
    expect(take(c, MessageType.VoteResp, 3, 1).map((m) => m.reject)).toEqual([false, false]);
    expect(c.raft(3).vote).toBe(1);
    expect(c.node(3).storage.initialState().hardState.vote).toBe(1);
    c.deliver({ ...request!, from: 2 });
    c.processReady(3);
    expect(take(c, MessageType.VoteResp, 3, 2).map((m) => m.reject)).toEqual([true]);
  });

  it("a heartbeat delivered twice leaves the follower's term, leader and commit as one did; a read acknowledged twice by one voter still waits for a majority", () => {
    const c = new TestCluster({ voters: [1, 2, 3, 4, 5] });
    c.elect(1);
    c.propose(1, "a");
    c.node(1).raw.readIndex(bytes("read-1"));
    c.processReady(1);
    const heartbeat = take(c, MessageType.Heartbeat, 1, 2)[0];
    deliverTwice(c, heartbeat);
    const follower = c.raft(2);
    const after = { term: follower.term, lead: follower.lead, commit: follower.raftLog.committed };
    c.deliver(heartbeat!);
    expect({
      term: follower.term,
      lead: follower.lead,
      commit: follower.raftLog.committed,
    }).toEqual(after);
    c.processReady(2);
    // Three answers to three copies, each carrying the read's context: one voter's acks.
    for (const m of take(c, MessageType.HeartbeatResp, 2, 1)) deliverTwice(c, m);
    c.processReady(1);
    expect(c.node(1).readStates).toEqual([]);
    c.deliver(take(c, MessageType.Heartbeat, 1, 3)[0]!);
    c.processReady(3);
    c.deliver(take(c, MessageType.HeartbeatResp, 3, 1)[0]!);
    c.processReady(1);
    expect(c.node(1).readStates.map((r) => new TextDecoder().decode(r.requestCtx))).toEqual([
      "read-1",
    ]);
  });

  it("an append answer delivered twice changes nothing the first did; a rejection delivered twice probes back once (etcd: a stale rejection is ignored)", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    // Node 3 misses two appends: the leader's next for it runs ahead of its log.
    c.dropIf = (m) => m.to === 3;
    c.propose(1, "b");
    c.propose(1, "c");
    c.dropIf = () => false;
    c.node(1).raw.propose(bytes("d"));
    c.processReady(1);
    c.deliver(take(c, MessageType.App, 1, 2)[0]!);
    c.deliver(take(c, MessageType.App, 1, 3)[0]!);
    c.processReady(2);
    c.processReady(3);
    const accepted = take(c, MessageType.AppResp, 2, 1)[0]!;
    c.deliver(accepted);
    c.processReady(1);
    const committed = c.raft(1).raftLog.committed;
    const sent = c.queue.length;
    c.deliver(accepted);
    c.processReady(1);
    expect(c.raft(1).raftLog.committed).toBe(committed);
    expect(c.queue.length).toBe(sent);

    const rejection = take(c, MessageType.AppResp, 3, 1)[0];
    expect(rejection?.reject).toBe(true);
    c.queue = [];
    deliverTwice(c, rejection);
    c.processReady(1);
    expect(take(c, MessageType.App, 1, 3)).toHaveLength(1);
    c.tickAndStabilize(5);
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b", "c", "d"]);
  });

  it("a cluster whose every control message arrives twice elects one leader per term and commits", () => {
    const c = new TestCluster({
      voters: [1, 2, 3],
      config: { preVote: true, checkQuorum: true },
    });
    const deliver = c.deliver.bind(c);
    c.deliver = (m: Message): void => {
      deliver(m);
      if (isDuplexType(m.type)) deliver(m);
    };
    c.tickAndStabilize(40);
    const first = c.leader();
    expect(first).not.toBe(0);
    c.propose(first, "one");
    c.isolate(first);
    c.tickAndStabilize(40);
    const second = c.leader();
    expect(second).not.toBe(0);
    expect(second).not.toBe(first);
    c.heal();
    c.tickAndStabilize(40);
    c.propose(c.leader(), "two");
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["one", "two"]);
  });
});
