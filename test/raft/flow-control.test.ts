/**
 * The leader's flow control towards each follower (etcd's Progress: probe, replicate, the
 * inflight window, message size bounds) and the bound on uncommitted proposals. The Raft thesis
 * motivates both: §10.2.1 (pipelining appends, batching) and §6.1/§10 (a leader must not accept
 * work without limit). Each test runs set up → act → check.
 */
import { describe, expect, it } from "vitest";
import { BlixardError, OverloadedError } from "../../src/common/errors.js";
import { entryWireSize } from "../../src/raft/entries.js";
import type { Message, NodeId } from "../../src/raft/types.js";
import { bytes, TestCluster } from "./cluster.js";
import { deliverAndTakeAnswer, MT, Network, takeMessagesFrom } from "./scenario-helpers.js";

/** Appends from the leader to `to` among `messages`. */
function appendsTo(messages: readonly Message[], to: NodeId): Message[] {
  return messages.filter((m) => m.type === MT.App && m.to === to);
}

/** A 3-node cluster led by 1 whose followers are in replicate state. */
function replicating(config: object): TestCluster {
  const c = new TestCluster({ voters: [1, 2, 3], config });
  c.elect(1);
  expect(c.node(1).raw.status().progress.get(2)?.state).toBe("replicate");
  return c;
}

describe("thesis §10.2.1 pipelined appends are bounded by an inflight window", () => {
  // One entry per append (maxSizePerMsgBytes 1) and at most two appends in flight per follower.
  const config = { maxInflightMessages: 2, maxSizePerMsgBytes: 1 };

  it("§10.2.1: with a window of 2 the leader sends two appends, pauses, and sends one more per acknowledged append", () => {
    const c = replicating(config);
    const leader = c.node(1).raw;

    for (const cmd of ["a", "b", "c", "d", "e"]) leader.propose(bytes(cmd));
    const sent = takeMessagesFrom(c, 1);

    const toTwo = appendsTo(sent, 2);
    expect(toTwo.map((m) => m.entries.map((e) => e.index))).toEqual([[2], [3]]);
    expect(leader.status().progress.get(2)).toMatchObject({ paused: true, inflightMessages: 2 });

    // The first append is acknowledged: one slot frees and exactly one more append goes out.
    const ack = deliverAndTakeAnswer(c, toTwo[0] as Message);
    expect(ack).toMatchObject([{ type: MT.AppResp, index: 2, reject: false }]);
    const afterAck = deliverAndTakeAnswer(c, ack[0] as Message);
    expect(appendsTo(afterAck, 2).map((m) => m.entries.map((e) => e.index))).toEqual([[4]]);
    expect(leader.status().progress.get(2)).toMatchObject({ paused: true, inflightMessages: 2 });

    // Everything delivered: the window drains and every entry reaches every node.
    c.queue.push(...sent.filter((m) => m !== toTwo[0]), ...afterAck);
    c.stabilize();
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b", "c", "d", "e"]);
    expect(leader.status().progress.get(2)).toMatchObject({ paused: false, inflightMessages: 0 });
  });

  it("§10.2.1: the window also closes once maxInflightBytes of payload are in flight", () => {
    const c = replicating({ maxSizePerMsgBytes: 1, maxInflightBytes: 10 });
    const leader = c.node(1).raw;

    for (const cmd of ["aaaa", "bbbb", "cccc", "dddd", "eeee"]) leader.propose(bytes(cmd));
    const sent = takeMessagesFrom(c, 1);

    // 4 + 4 bytes leave room; the third append reaches 12 >= 10 bytes and closes the window.
    expect(appendsTo(sent, 2)).toHaveLength(3);
    expect(leader.status().progress.get(2)).toMatchObject({ paused: true, inflightMessages: 3 });

    c.queue.push(...sent);
    c.stabilize();
    expect(c.appliedCommands(2)).toEqual(["aaaa", "bbbb", "cccc", "dddd", "eeee"]);
  });

  it("§10.2.1: no append carries more than maxSizePerMsgBytes of entries, unless a single entry is larger", () => {
    const perEntryBytes = entryWireSize({ term: 1, index: 1, type: 0, data: bytes("c0") });
    const c = replicating({ maxSizePerMsgBytes: 2 * perEntryBytes + 1 });
    const net = new Network(c);
    const commands = ["c0", "c1", "c2", "c3", "c4", "c5", "c6"];

    c.node(1).raw.propose(...commands.map(bytes));
    c.stabilize();

    const appends = net.messages((m) => m.type === MT.App && m.entries.length > 0);
    expect(appends.length).toBeGreaterThan(0);
    for (const m of appends) expect(m.entries.length).toBeLessThanOrEqual(2);
    expect(appends.some((m) => m.entries.length === 2)).toBe(true);
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(commands);
  });
});

describe("etcd Progress: probe state sends one append at a time", () => {
  const config = { maxInflightMessages: 2, maxSizePerMsgBytes: 1 };

  it("a report that the follower is unreachable moves it from replicate to probe, leaving the others alone", () => {
    const c = replicating(config);
    const leader = c.node(1).raw;

    leader.reportUnreachable(2);

    expect(leader.status().progress.get(2)?.state).toBe("probe");
    expect(leader.status().progress.get(3)?.state).toBe("replicate");
  });

  it("in probe state the leader sends one append and then nothing until a heartbeat response or append response arrives", () => {
    const c = replicating(config);
    const leader = c.node(1).raw;
    leader.reportUnreachable(2);

    for (const cmd of ["a", "b", "c"]) leader.propose(bytes(cmd));
    const sent = takeMessagesFrom(c, 1);

    expect(appendsTo(sent, 2)).toHaveLength(1);
    expect(leader.status().progress.get(2)).toMatchObject({ state: "probe", paused: true });

    // A heartbeat round: the follower's answer proves it is reachable and unpauses the probe.
    c.tick(1, 1);
    const heartbeat = takeMessagesFrom(c, 1).find((m) => m.type === MT.Heartbeat && m.to === 2);
    expect(heartbeat).toBeDefined();
    const hbResp = deliverAndTakeAnswer(c, heartbeat as Message);
    const afterHeartbeat = deliverAndTakeAnswer(c, hbResp[0] as Message);
    const probe = appendsTo(afterHeartbeat, 2);
    expect(probe).toHaveLength(1);
    expect(leader.status().progress.get(2)).toMatchObject({ state: "probe", paused: true });

    // The probe is acknowledged: the follower goes back to replicate and the window fills again.
    const ack = deliverAndTakeAnswer(c, probe[0] as Message);
    const afterAck = deliverAndTakeAnswer(c, ack[0] as Message);
    expect(leader.status().progress.get(2)?.state).toBe("replicate");
    expect(appendsTo(afterAck, 2)).toHaveLength(2);

    c.queue.push(...sent.filter((m) => m.to === 3), ...afterAck);
    c.stabilize();
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b", "c"]);
  });
});

describe("the leader bounds its uncommitted proposals", () => {
  // A leader that cannot commit (no quorum reachable) must not buffer proposals without limit;
  // past maxUncommittedEntriesSizeBytes of payload it refuses with OVERLOADED.
  it("proposals past maxUncommittedEntriesSizeBytes are refused with OVERLOADED and accepted again once entries commit", () => {
    const c = replicating({ maxUncommittedEntriesSizeBytes: 10 });
    const net = new Network(c);
    const leader = c.node(1).raw;
    net.block = (m) => m.type === MT.App;

    leader.propose(bytes("aaaa"));
    leader.propose(bytes("bbbb"));
    leader.propose(bytes("cc")); // exactly 10 bytes uncommitted: still allowed
    c.stabilize();
    const lastIndex = c.raft(1).raftLog.lastIndex();

    let refusal: unknown;
    try {
      leader.propose(bytes("d"));
    } catch (error) {
      refusal = error;
    }

    expect(refusal).toBeInstanceOf(OverloadedError);
    expect((refusal as BlixardError).code).toBe("OVERLOADED");
    expect(c.raft(1).raftLog.lastIndex()).toBe(lastIndex);
    expect(c.raft(1).electionState().uncommittedSizeBytes).toBe(10);

    // The followers come back; the entries commit and the budget is released.
    net.heal();
    c.tickAndStabilize(1);
    expect(c.appliedCommands(1)).toEqual(["aaaa", "bbbb", "cc"]);
    expect(c.raft(1).electionState().uncommittedSizeBytes).toBe(0);

    leader.propose(bytes("d"));
    c.stabilize();
    expect(c.appliedCommands(2)).toEqual(["aaaa", "bbbb", "cc", "d"]);
  });

  it("a single proposal larger than the bound is accepted when nothing else is uncommitted, so it cannot be stuck forever", () => {
    const c = replicating({ maxUncommittedEntriesSizeBytes: 10 });

    c.node(1).raw.propose(bytes("x".repeat(50)));
    c.stabilize();

    expect(c.appliedCommands(3)).toEqual(["x".repeat(50)]);
  });
});
