/**
 * Joint quorums (Raft thesis §4.3): while a configuration changes, every decision needs a
 * majority of the incoming voters and, separately, a majority of the outgoing ones.
 */
import type { NodeId } from "../types.js";
import type { AckedIndexer } from "./majority.js";
import { VoteResult, majorityCommittedIndex, majorityVoteResult } from "./majority.js";

/**
 * Two voter sets that must both agree. Outside a joint configuration `outgoing` is empty, and
 * an empty set agrees to anything, so the same code serves both cases.
 */
export interface JointConfig {
  /** The voters of the configuration being entered (C_new). */
  readonly incoming: ReadonlySet<NodeId>;
  /** The voters of the configuration being left (C_old); empty when not joint. */
  readonly outgoing: ReadonlySet<NodeId>;
}

/**
 * The largest index acknowledged by a majority of both halves: the min of both majorities'
 * committed index (outgoing empty -> just incoming; both empty -> MAX_INDEX).
 */
export function jointCommittedIndex(config: JointConfig, acked: AckedIndexer): number {
  const incoming = majorityCommittedIndex(config.incoming, acked);
  const outgoing = majorityCommittedIndex(config.outgoing, acked);
  return incoming < outgoing ? incoming : outgoing;
}

/** Both Won -> Won; either Lost -> Lost; else Pending. */
export function jointVoteResult(
  config: JointConfig,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const incoming = majorityVoteResult(config.incoming, votes);
  const outgoing = majorityVoteResult(config.outgoing, votes);
  if (incoming === outgoing) {
    return incoming;
  }
  if (incoming === VoteResult.Lost || outgoing === VoteResult.Lost) {
    return VoteResult.Lost;
  }
  // One Won and one Pending: the pending half can still go either way.
  return VoteResult.Pending;
}

/** Sorted union of incoming and outgoing (every voter, each once, ascending). */
export function jointMembers(config: JointConfig): NodeId[] {
  const members = new Set(config.incoming);
  for (const id of config.outgoing) {
    members.add(id);
  }
  return [...members].sort((a, b) => a - b);
}
