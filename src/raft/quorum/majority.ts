/**
 * Majority quorums: the commit index and the election outcome of one set of voters. Raft's
 * safety rests on any two majorities of the same set intersecting.
 */
import type { NodeId } from "../types.js";
import { MAX_INDEX } from "../types.js";

/** The outcome of an election (or of a quorum-activity check) as far as the votes go. */
export const VoteResult = {
  /** Neither won nor lost yet: the missing votes could decide either way. */
  Pending: 0,
  /** A majority can no longer be reached, whatever the missing votes are. */
  Lost: 1,
  /** A majority granted. */
  Won: 2,
} as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** Returns the acknowledged (durable) index of a voter, or undefined if unknown (counts as 0). */
export type AckedIndexer = (id: NodeId) => number | undefined;

/**
 * Below this many voters an insertion sort beats the typed-array sort (no call overhead, no
 * view allocation); real clusters have 3 to 7 voters.
 */
const INSERTION_SORT_MAX_VOTERS = 16;

/**
 * Scratch space reused across calls so the hot path (every append response) allocates nothing.
 * A Float64Array holds every index up to MAX_INDEX exactly. It only grows.
 */
let scratchIndexes = new Float64Array(INSERTION_SORT_MAX_VOTERS);

/**
 * Largest index acknowledged by a majority of `voters`. Empty set -> MAX_INDEX (so joint min
 * works). `acked` must not call back into this module: it shares one scratch buffer.
 */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, acked: AckedIndexer): number {
  const voterCount = voters.size;
  if (voterCount === 0) {
    // An empty config places no constraint; MAX_INDEX is the identity of the joint min.
    return MAX_INDEX;
  }
  if (scratchIndexes.length < voterCount) {
    scratchIndexes = new Float64Array(Math.max(voterCount, scratchIndexes.length * 2));
  }
  const indexes = scratchIndexes;
  let filled = 0;
  for (const id of voters) {
    indexes[filled++] = acked(id) ?? 0;
  }
  if (voterCount <= INSERTION_SORT_MAX_VOTERS) {
    for (let i = 1; i < voterCount; i++) {
      const value = indexes[i]!;
      let j = i - 1;
      while (j >= 0 && indexes[j]! > value) {
        indexes[j + 1] = indexes[j]!;
        j--;
      }
      indexes[j + 1] = value;
    }
  } else {
    indexes.subarray(0, voterCount).sort();
  }
  // Ascending order: the element at n - quorum is acknowledged by itself and every voter above
  // it, which is exactly a quorum; any larger index is acknowledged by fewer.
  const quorum = (voterCount >> 1) + 1;
  return indexes[voterCount - quorum]!;
}

/**
 * Won if a majority granted, Lost if a majority can no longer be reached, else Pending. Empty
 * set -> Won (an empty config agrees to anything, which makes it neutral in a joint config).
 * Votes of non-members are ignored.
 */
export function majorityVoteResult(
  voters: ReadonlySet<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const voterCount = voters.size;
  if (voterCount === 0) {
    return VoteResult.Won;
  }
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) {
      missing++;
    } else if (vote) {
      granted++;
    }
  }
  const quorum = (voterCount >> 1) + 1;
  if (granted >= quorum) {
    return VoteResult.Won;
  }
  if (granted + missing >= quorum) {
    return VoteResult.Pending;
  }
  return VoteResult.Lost;
}
