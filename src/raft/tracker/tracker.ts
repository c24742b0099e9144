/**
 * What the leader (or a candidate) tracks about the whole group: the membership configuration,
 * each member's progress and the votes of the current election.
 */
import type { ConfState, NodeId } from "../types.js";
import type { JointConfig } from "../quorum/index.js";
import { VoteResult, jointCommittedIndex, jointMembers, jointVoteResult } from "../quorum/index.js";
import type { Progress } from "./progress.js";

/**
 * A membership configuration. `voters.outgoing`, `learnersNext` are empty and `autoLeave` is
 * false outside a joint configuration. Learners and voters never overlap: a voter of the
 * outgoing config that is to become a learner waits in `learnersNext`.
 */
export interface TrackerConfig {
  /** The voters: incoming and (in a joint config) outgoing. */
  readonly voters: JointConfig;
  /** Members that receive the log but never vote or count towards a commit. */
  readonly learners: ReadonlySet<NodeId>;
  /** Outgoing voters that become learners on leaving joint. */
  readonly learnersNext: ReadonlySet<NodeId>;
  /** Leave the joint config automatically once it is committed. */
  readonly autoLeave: boolean;
}

/** A new configuration with no members. */
export function emptyTrackerConfig(): TrackerConfig {
  return {
    voters: { incoming: new Set(), outgoing: new Set() },
    learners: new Set(),
    learnersNext: new Set(),
    autoLeave: false,
  };
}

/** The ids of a set, ascending. */
function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}

/** The ConfState (sorted id lists) that describes `config`. */
export function trackerConfigToConfState(config: TrackerConfig): ConfState {
  return {
    voters: sortedIds(config.voters.incoming),
    learners: sortedIds(config.learners),
    votersOutgoing: sortedIds(config.voters.outgoing),
    learnersNext: sortedIds(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

/** How to build a {@link ProgressTracker}. */
export interface ProgressTrackerOptions {
  /** The inflight window of each follower, in messages. */
  readonly maxInflightMessages: number;
  /** The inflight window of each follower, in payload bytes; 0 = no byte limit. */
  readonly maxInflightBytes: number;
}

/**
 * All members' progress plus the config and the votes of the current election (etcd
 * ProgressTracker). Starts with an empty config; a config change replaces `config` and
 * `progress` together.
 */
export class ProgressTracker {
  /** The current membership configuration. */
  config: TrackerConfig;
  /** The progress of every member (voters, learners, learnersNext). */
  progress: Map<NodeId, Progress>;
  /** The votes received in the current election: true = granted. */
  readonly votes = new Map<NodeId, boolean>();
  /** The inflight window of each new follower, in messages. */
  readonly maxInflightMessages: number;
  /** The inflight window of each new follower, in payload bytes; 0 = no byte limit. */
  readonly maxInflightBytes: number;

  // Reused by visit() and quorumActive(), which run on every tick or broadcast.
  private readonly scratchIds: NodeId[] = [];
  private readonly scratchActive = new Map<NodeId, boolean>();
  private visiting = false;
  // confState() of this configuration object (see there).
  private confStateOf: TrackerConfig | undefined;
  private cachedConfState: ConfState = trackerConfigToConfState(emptyTrackerConfig());
  // Bound once so committed() allocates no closure per call.
  private readonly matchOf = (id: NodeId): number | undefined => this.progress.get(id)?.match;

  /** An empty tracker: no members, no votes. */
  constructor(options: ProgressTrackerOptions) {
    this.config = emptyTrackerConfig();
    this.progress = new Map();
    this.maxInflightMessages = options.maxInflightMessages;
    this.maxInflightBytes = options.maxInflightBytes;
  }

  /**
   * The configuration as a ConfState, with sorted arrays. Built once per configuration (a
   * change replaces {@link config}, never edits it) and shared: the leader's periodic checks
   * read it every second, and it is immutable like every ConfState.
   */
  confState(): ConfState {
    if (this.confStateOf !== this.config) {
      this.confStateOf = this.config;
      this.cachedConfState = trackerConfigToConfState(this.config);
    }
    return this.cachedConfState;
  }

  /** True if there is one incoming voter and no outgoing one (a single-node group). */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  /**
   * The largest index acknowledged (by `match`) by a quorum of the voters; joint configs need
   * both halves. MAX_INDEX if there are no voters at all.
   */
  committed(): number {
    return jointCommittedIndex(this.config.voters, this.matchOf);
  }

  /** Calls `fn` for every member's progress, in ascending id order (for determinism). */
  visit(fn: (id: NodeId, pr: Progress) => void): void {
    // A nested visit (fn calling visit) gets its own array so it cannot clobber ours.
    const ids = this.visiting ? [] : this.scratchIds;
    ids.length = 0;
    for (const id of this.progress.keys()) {
      // Insertion sort: the map is small and often already in order.
      let j = ids.length;
      while (j > 0 && ids[j - 1]! > id) {
        ids[j] = ids[j - 1]!;
        j--;
      }
      ids[j] = id;
    }
    const wasVisiting = this.visiting;
    this.visiting = true;
    try {
      for (const id of ids) {
        // fn may remove members; skip those already gone.
        const pr = this.progress.get(id);
        if (pr !== undefined) {
          fn(id, pr);
        }
      }
    } finally {
      this.visiting = wasVisiting;
    }
  }

  /** True if a quorum of voters (both halves, when joint) has been recently active. */
  quorumActive(): boolean {
    const active = this.scratchActive;
    active.clear();
    // Learners may go in too: the quorum functions only look at the voters.
    for (const [id, pr] of this.progress) {
      active.set(id, pr.recentActive);
    }
    return jointVoteResult(this.config.voters, active) === VoteResult.Won;
  }

  /** The voters: sorted union of incoming and outgoing. */
  voterNodes(): NodeId[] {
    return jointMembers(this.config.voters);
  }

  /** The learners, present and staged: sorted learners ∪ learnersNext. */
  learnerNodes(): NodeId[] {
    return sortedIds(new Set([...this.config.learners, ...this.config.learnersNext]));
  }

  /** Forgets the votes of the last election. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote; only the first vote of an id counts (a later duplicate is ignored). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) {
      this.votes.set(id, granted);
    }
  }

  /**
   * Counts the votes of voters with a progress (learners' votes are ignored) and decides the
   * election over the joint config.
   */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) {
        continue;
      }
      const vote = this.votes.get(id);
      if (vote === true) {
        granted++;
      } else if (vote === false) {
        rejected++;
      }
    }
    return { granted, rejected, result: jointVoteResult(this.config.voters, this.votes) };
  }
}
