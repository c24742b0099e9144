import { RAFT_RULES, type SafetyRules } from "./rules.js";
import { NONE } from "./types.js";

/**
 * Deliberate bugs, for the simulator's self-test only: it plants one and must then report a
 * violation, which proves its checkers can fail. A bug is not a switch inside the core: it is a
 * {@link SafetyRules} strategy built here by {@link plantedRules} and handed to the core through
 * `RaftConfig.rules`; only tests and the simulator build one.
 */
export interface PlantedBugs {
  /** Figure 8: commit an entry of an earlier term by counting replicas. */
  readonly countOldTermEntries?: boolean;
  /** Grant votes without the §5.4.1 up-to-date check. */
  readonly skipUpToDateCheck?: boolean;
  /** Leave the vote out of the hard state handed to storage, so a restart forgets it. */
  readonly forgetToPersistVote?: boolean;
}

/** No bugs: what every production node runs with. */
export const NO_PLANTED_BUGS: PlantedBugs = Object.freeze({});

/**
 * The safety rules with `bugs` planted: each bug replaces one rule of {@link RAFT_RULES}; with no
 * bugs it is {@link RAFT_RULES} itself. Test and simulator use only.
 */
export function plantedRules(bugs: PlantedBugs): SafetyRules {
  if (
    bugs.countOldTermEntries !== true &&
    bugs.skipUpToDateCheck !== true &&
    bugs.forgetToPersistVote !== true
  ) {
    return RAFT_RULES;
  }
  return Object.freeze({
    // Figure 8: whatever a quorum holds commits, whichever term wrote it.
    commitTerm:
      bugs.countOldTermEntries === true
        ? (log, quorumIndex) => log.termOrZero(quorumIndex)
        : RAFT_RULES.commitTerm,
    candidateUpToDate: bugs.skipUpToDateCheck === true ? () => true : RAFT_RULES.candidateUpToDate,
    durableVote: bugs.forgetToPersistVote === true ? () => NONE : RAFT_RULES.durableVote,
  } satisfies SafetyRules);
}
