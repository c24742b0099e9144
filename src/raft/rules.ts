import type { RaftLog } from "./log.js";
import type { NodeId } from "./types.js";

/**
 * The three safety rules the simulator's planted bugs replace, as a strategy the core is built
 * with: the core asks these and holds no bug switches of its own. Every production node runs
 * {@link RAFT_RULES}; only `src/raft/planted-bugs.ts` builds another.
 */
export interface SafetyRules {
  /**
   * The term the entry at `quorumIndex` must have for the leader to commit it (§5.4.2: the
   * leader's own `currentTerm`; entries of older terms commit only indirectly).
   */
  commitTerm(log: RaftLog, quorumIndex: number, currentTerm: number): number;
  /** True if a candidate whose log ends at (`lastIndex`, `lastTerm`) may get our vote (§5.4.1). */
  candidateUpToDate(log: RaftLog, lastIndex: number, lastTerm: number): boolean;
  /** The vote written to the hard state, which storage makes durable before we speak (§5.2). */
  durableVote(vote: NodeId): NodeId;
}

/** The rules of the Raft paper: what every production node runs. */
export const RAFT_RULES: SafetyRules = Object.freeze({
  commitTerm: (_log: RaftLog, _quorumIndex: number, currentTerm: number) => currentTerm,
  candidateUpToDate: (log: RaftLog, lastIndex: number, lastTerm: number) =>
    log.isUpToDate(lastIndex, lastTerm),
  durableVote: (vote: NodeId) => vote,
});
