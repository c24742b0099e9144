/**
 * Helpers for the membership, leader-transfer and read-index scenario tests: building conf
 * changes, adding brand-new nodes through a snapshot, watching the network, and stepping a
 * cluster until one particular message has been delivered.
 */
import { expect } from "vitest";
import { bytes, type TestCluster } from "./cluster.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  MessageType,
  type ConfChange,
  type ConfChangeSingle,
  type ConfState,
  type Message,
  type NodeId,
} from "../../src/raft/types.js";

/** A single change: `add(4)`, `remove(2)`, `addLearner(5)`. */
export const add = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddNode, nodeId });
export const remove = (nodeId: NodeId): ConfChangeSingle => ({
  type: ConfChangeType.RemoveNode,
  nodeId,
});
export const addLearner = (nodeId: NodeId): ConfChangeSingle => ({
  type: ConfChangeType.AddLearnerNode,
  nodeId,
});

/** A conf change with the given transition (default Auto). */
export function confChange(
  changes: readonly ConfChangeSingle[],
  transition: ConfChangeTransition = ConfChangeTransition.Auto,
): ConfChange {
  return { transition, changes, context: new Uint8Array() };
}

/** The empty conf change that leaves a joint configuration explicitly. */
export const LEAVE_JOINT: ConfChange = confChange([]);

/**
 * Proposes `changes` at `leader` (which must be the leader) and returns the log index of the
 * conf change entry. Does not stabilize.
 */
export function proposeChange(
  c: TestCluster,
  leader: NodeId,
  changes: readonly ConfChangeSingle[],
  transition: ConfChangeTransition = ConfChangeTransition.Auto,
): number {
  const at = c.node(leader).raw.proposeConfChange(confChange(changes, transition));
  if (at === undefined) throw new Error(`node ${leader} is not the leader`);
  return at.index;
}

/** Proposes `changes` at `leader` and runs the cluster until it is quiet. */
export function changeAndStabilize(
  c: TestCluster,
  leader: NodeId,
  changes: readonly ConfChangeSingle[],
  transition: ConfChangeTransition = ConfChangeTransition.Auto,
): number {
  const index = proposeChange(c, leader, changes, transition);
  c.stabilize();
  return index;
}

/**
 * Adds brand-new nodes `ids` as learners, the way a real deployment does: the change commits
 * among the current members while the new nodes are still unreachable, then the leader
 * compacts its log into a snapshot that holds the new configuration, so a new node learns the
 * configuration from the snapshot (an empty node cannot apply a conf change on top of an empty
 * configuration). One heartbeat makes the leader probe the new nodes; they catch up.
 */
export function addLearnersViaSnapshot(
  c: TestCluster,
  leader: NodeId,
  ids: readonly NodeId[],
): void {
  const fresh = new Set(ids);
  for (const id of ids) if (!c.nodes.has(id)) c.addEmptyNode(id);
  const previous = c.dropIf;
  c.dropIf = (m) => fresh.has(m.to) || fresh.has(m.from) || previous(m);
  for (const id of ids) changeAndStabilize(c, leader, [addLearner(id)]);

  const node = c.node(leader);
  const applied = node.appliedIndex;
  node.storage.createSnapshot(applied, c.raft(leader).trk.confState(), new Uint8Array());
  node.storage.compact(applied);

  c.dropIf = previous;
  c.tick(leader); // one heartbeat: the new nodes answer and are sent the snapshot
  c.stabilize();
  const leaderLast = c.raft(leader).raftLog.lastIndex();
  for (const id of ids) {
    expect(c.raft(id).raftLog.lastIndex(), `learner ${id} caught up`).toBe(leaderLast);
    expect(c.raft(id).isLearner).toBe(true);
  }
}

/**
 * Watches the network: records every message offered to it (including ones dropped or
 * addressed to a crashed node) and drops the ones `blocked` matches. Install once per test; use
 * its own isolate/partition/heal instead of the cluster's (those would remove the recorder).
 */
export class Network {
  /** Every message offered to the network since install (or the last `clear`). */
  sent: Message[] = [];
  private blocked: (m: Message) => boolean = () => false;

  constructor(private readonly cluster: TestCluster) {
    cluster.dropIf = (m) => {
      this.sent.push(m);
      return this.blocked(m);
    };
  }

  /** Drops every message matching `predicate` (replacing any earlier rule). */
  block(predicate: (m: Message) => boolean): void {
    this.blocked = predicate;
  }

  /** Cuts `ids` off from everyone else (and from each other). */
  isolate(...ids: NodeId[]): void {
    const cut = new Set(ids);
    this.blocked = (m) => cut.has(m.from) || cut.has(m.to);
  }

  /** Only messages within one group get through. Nodes in no group are cut off entirely. */
  groups(...groups: (readonly NodeId[])[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const id of g) groupOf.set(id, i);
    });
    this.blocked = (m) => {
      const a = groupOf.get(m.from);
      return a === undefined || a !== groupOf.get(m.to);
    };
  }

  /** Lets every message through. */
  heal(): void {
    this.blocked = () => false;
  }

  /** Forgets what was recorded so far. */
  clear(): void {
    this.sent = [];
  }

  /** Recorded messages of `type`, optionally only those from `from`. */
  ofType(type: MessageType, from?: NodeId): Message[] {
    return this.sent.filter((m) => m.type === type && (from === undefined || m.from === from));
  }

  /** Recorded vote requests (pre-votes and votes). */
  voteRequests(): Message[] {
    return this.sent.filter((m) => m.type === MessageType.Vote || m.type === MessageType.PreVote);
  }
}

/**
 * Runs the cluster like `stabilize`, but stops right after delivering the first message that
 * matches `stopAfter`, before its target (or anyone) handles another Ready. Messages not yet
 * delivered stay queued. Returns the matching message.
 */
export function stepUntilDelivered(c: TestCluster, stopAfter: (m: Message) => boolean): Message {
  for (let round = 0; round < 10_000; round++) {
    for (const id of c.nodes.keys()) c.processReady(id);
    const batch = c.queue;
    c.queue = [];
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i] as Message;
      c.deliver(m);
      if (stopAfter(m)) {
        c.queue = [...batch.slice(i + 1), ...c.queue];
        return m;
      }
    }
    if (batch.length === 0) break;
  }
  throw new Error("no matching message was delivered");
}

/** A read request context. */
export const readCtx = (label: string): Uint8Array => bytes(label);

/** The configuration `id` currently uses (what it last applied). */
export function configOf(c: TestCluster, id: NodeId): ConfState {
  return c.raft(id).trk.confState();
}

/** Runs `fn` and returns what it threw; fails the test if it did not throw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

/** Ticks and stabilizes the whole cluster until a leader is up, at most `maxTicks` times. */
export function tickUntilLeader(c: TestCluster, maxTicks = 200): NodeId {
  for (let i = 0; i < maxTicks; i++) {
    const leader = c.leader();
    if (leader !== 0) return leader;
    c.tickAndStabilize(1);
  }
  throw new Error(`no leader after ${maxTicks} ticks`);
}
