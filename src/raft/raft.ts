import { invariant } from "../common/assert.js";
import {
  ConflictError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  UnavailableError,
} from "../common/errors.js";
import type { Random } from "../common/random.js";
import {
  confChangeEntersJoint,
  confChangeLeavesJoint,
  Changer,
  restoreConfState,
  type ChangeResult,
} from "./confchange/index.js";
import { decodeConfChange, encodeConfChange } from "./conf-change-codec.js";
import type { Logger } from "../common/logger.js";
import { resolveRaftConfig, type RaftConfig } from "./config.js";
import type { SafetyRules } from "./rules.js";
import { payloadsSize } from "./entries.js";
import { RaftLog } from "./log.js";
import { jointVoteResult, VoteResult } from "./quorum/index.js";
import { ReadOnly, ReadOnlyOption } from "./read-only.js";
import {
  CompactedError,
  LogUnavailableError,
  SnapshotTemporarilyUnavailableError,
} from "./storage.js";
import { Progress, ProgressState, ProgressTracker } from "./tracker/index.js";
import {
  ConfChangeTransition,
  EntryType,
  MAX_MESSAGE_TERM_OR_INDEX,
  message,
  MessageType,
  NONE,
  Role,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SoftState,
} from "./types.js";

/** Why a node campaigns. */
export const CampaignType = {
  /** A pre-vote poll that changes no term (thesis §9.6). */
  PreElection: "pre-election",
  /** A normal election. */
  Election: "election",
  /** An election ordered by the leader during a leadership transfer: voters ignore their lease. */
  Transfer: "transfer",
} as const;
export type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

/** Vote requests of a leadership transfer carry this context so voters disregard the leader lease. */
const TRANSFER_CONTEXT = new TextEncoder().encode("CampaignTransfer");

function isTransferContext(context: Uint8Array | undefined): boolean {
  if (context === undefined || context.length !== TRANSFER_CONTEXT.length) return false;
  for (let i = 0; i < context.length; i++) if (context[i] !== TRANSFER_CONTEXT[i]) return false;
  return true;
}

/**
 * Why an append cannot come from a real leader, or undefined if it could: its entries must
 * follow `index` one by one, with terms that never decrease, at least `logTerm` and at most the
 * message's term.
 */
function malformedAppend(m: Message): string | undefined {
  if (m.logTerm > m.term) return `log term ${m.logTerm} exceeds the message term ${m.term}`;
  let previousTerm = m.logTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i] as Entry;
    if (e.index !== m.index + 1 + i)
      return `entry ${i} has index ${e.index}, not ${m.index + 1 + i}`;
    if (e.term < previousTerm || e.term > m.term) {
      return `entry ${e.index} has term ${e.term} outside [${previousTerm}, ${m.term}]`;
    }
    previousTerm = e.term;
  }
  return undefined;
}

function voteResponseType(type: MessageType): MessageType {
  return type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
}

/** The encoded empty conf change that leaves a joint configuration. */
const LEAVE_JOINT_DATA = encodeConfChange({
  transition: ConfChangeTransition.Auto,
  changes: [],
  context: new Uint8Array(0),
});

/**
 * The Raft state machine (etcd's `raft` struct): roles, elections, replication, membership,
 * leadership transfer and reads. It performs no I/O: inputs arrive through {@link Raft.step}
 * and {@link Raft.tick}; outputs accumulate in `msgs`, the log's unstable part and
 * `readStates`, which {@link RawNode} packs into a `Ready`. Not safe for concurrent use.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  role: Role = Role.Follower;
  /** The leader this node follows (or itself), NONE when unknown. */
  lead: NodeId = NONE;
  /** The voter a leadership transfer is handing over to, NONE when none runs. */
  leadTransferee: NodeId = NONE;
  /** The log index of the newest conf change proposed; no new one until it is applied. */
  pendingConfIndex = 0;
  isLearner = false;

  readonly raftLog: RaftLog;
  trk: ProgressTracker;
  readonly readOnly: ReadOnly;
  /** Messages waiting to be handed out by the next Ready. */
  msgs: Message[] = [];
  /** Reads confirmed and waiting to be handed out by the next Ready. */
  readStates: ReadState[] = [];
  /**
   * Peers sent a snapshot whose outcome (SnapStatus) has not come back, in any term. A
   * Progress lives one term: without this, a node that leads again while its older term's
   * snapshot still crosses would send another, and that one's late report would clear the flag
   * of the newer one (two in flight to one follower).
   */
  private readonly snapshotUnreported = new Set<NodeId>();

  private readonly electionTimeoutTicks: number;
  private readonly heartbeatTimeoutTicks: number;
  private randomizedElectionTimeoutTicks = 0;
  private electionElapsedTicks = 0;
  /**
   * The last vote request answered or ignored (type, candidate, term, verdict): its copies are
   * not logged again.
   */
  private lastVoteAnswer = "";
  private heartbeatElapsedTicks = 0;
  private uncommittedSizeBytes = 0;
  private pendingReadIndexMessages: Message[] = [];

  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly disableProposalForwarding: boolean;
  private readonly stepDownOnRemoval: boolean;
  private readonly maxSizePerMsgBytes: number;
  private readonly maxUncommittedEntriesSizeBytes: number;
  private readonly maxInflightMessages: number;
  private readonly maxInflightBytes: number;
  private readonly random: Random;
  private readonly logger: Logger;
  /** The safety rules: the paper's in production, a planted bug's in the simulator's self-test. */
  private readonly rules: SafetyRules;

  /**
   * Creates a node from the state in `config.storage` (its hard state, conf state and log).
   * @throws InvalidArgumentError on a bad config.
   * @throws InternalError if the stored hard state is inconsistent with the stored log.
   */
  constructor(config: RaftConfig) {
    const c = resolveRaftConfig(config);
    this.id = c.id;
    this.electionTimeoutTicks = c.electionTicks;
    this.heartbeatTimeoutTicks = c.heartbeatTicks;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.stepDownOnRemoval = c.stepDownOnRemoval;
    this.maxSizePerMsgBytes = c.maxSizePerMsgBytes;
    this.maxUncommittedEntriesSizeBytes = c.maxUncommittedEntriesSizeBytes;
    this.maxInflightMessages = c.maxInflightMessages;
    this.maxInflightBytes = c.maxInflightBytes;
    this.random = c.random;
    this.logger = c.logger;
    this.rules = c.rules;
    this.readOnly = new ReadOnly(c.readOnlyOption);
    this.raftLog = new RaftLog(c.storage, {
      maxCommittedSizePerReadyBytes: c.maxCommittedSizePerReadyBytes,
    });
    this.trk = new ProgressTracker({
      maxInflightMessages: this.maxInflightMessages,
      maxInflightBytes: this.maxInflightBytes,
    });

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfState(confState, this.trackerOptions());
    this.switchToConfig(restored);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) {
      this.loadState(hardState);
    }
    if (c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
    this.logger.info("raft node started", {
      id: this.id,
      term: this.term,
      commit: this.raftLog.committed,
      applied: this.raftLog.applied,
      lastIndex: this.raftLog.lastIndex(),
      voters: this.trk.voterNodes(),
    });
  }

  private trackerOptions(): {
    lastIndex: number;
    maxInflightMessages: number;
    maxInflightBytes: number;
  } {
    return {
      lastIndex: this.raftLog.lastIndex(),
      maxInflightMessages: this.maxInflightMessages,
      maxInflightBytes: this.maxInflightBytes,
    };
  }

  /** The volatile state a Ready reports when it changes. */
  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  /** The state that must be durable before this node speaks. */
  hardState(): HardState {
    return {
      term: this.term,
      vote: this.rules.durableVote(this.vote),
      commit: this.raftLog.committed,
    };
  }

  private loadState(state: HardState): void {
    invariant(
      state.commit >= this.raftLog.committed && state.commit <= this.raftLog.lastIndex(),
      () =>
        `stored commit ${state.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = state.commit;
    this.term = state.term;
    this.vote = state.vote;
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /** Queues a message for the next Ready, stamping sender and (for most types) term. */
  private send(m: Message): void {
    // A TransferLeader names the transferee in `from`; a follower forwarding one to the leader
    // must keep it, or the leader would hand leadership to the forwarder instead (etcd's send
    // fills From only when it is unset).
    const keepFrom = m.type === MessageType.TransferLeader && m.from !== NONE;
    const from = keepFrom ? m.from : this.id;
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Votes carry the term of the election they are about, which may differ from ours
      // (a pre-vote asks about term+1; a response answers the candidate's term).
      invariant(m.term !== 0, "vote messages must carry a term");
      this.msgs.push({ ...m, from });
      return;
    }
    invariant(m.term === 0, "only vote messages set their own term");
    // Proposals and read-index requests are forwarded without a term: they are not bound to one.
    // One copy per message (an idle leader sends ten heartbeats a second per follower).
    const term = m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex ? this.term : 0;
    this.msgs.push({ ...m, from, term });
  }

  /** Sends entries (or a snapshot) to `to` if its progress allows; true if a message went out. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    invariant(this.role === Role.Leader, "only a leader sends appends");
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    // A follower's progress never runs ahead of the leader's log, which never shrinks.
    invariant(
      pr.next <= this.raftLog.lastIndex() + 1,
      () => `progress of ${to} is past the leader's log (${pr}, last ${this.raftLog.lastIndex()})`,
    );

    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      entries = this.raftLog.entries(pr.next, this.maxSizePerMsgBytes);
    } catch (error) {
      if (error instanceof CompactedError || error instanceof LogUnavailableError) {
        return this.maybeSendSnapshot(to, pr);
      }
      throw error;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    invariant(
      entries.length === 0 || (entries[0] as Entry).index === pr.next,
      "an append must start at the follower's next index",
    );

    this.send(
      message({
        type: MessageType.App,
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries,
        commit: this.raftLog.committed,
      }),
    );
    pr.sentEntries(entries.length, payloadsSize(entries));
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** The entries `pr` needs were compacted: send the snapshot instead. */
  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) {
      // Snapshots are expensive; do not send one to a node that may well be down.
      this.logger.debug("not sending snapshot to inactive peer", { to });
      return false;
    }
    if (pr.snapshotInFlight || this.snapshotUnreported.has(to)) {
      // One at a time: the transport reports how the last one ended before the next goes.
      this.logger.debug("not sending snapshot: one is still in flight", { to });
      return false;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (error) {
      if (error instanceof SnapshotTemporarilyUnavailableError) {
        this.logger.debug("snapshot temporarily unavailable; will retry", { to });
        return false;
      }
      throw error;
    }
    invariant(snapshot.metadata.index > 0, "need a non-empty snapshot to catch up a follower");
    this.logger.info("sending snapshot", {
      to,
      snapshotIndex: snapshot.metadata.index,
      snapshotTerm: snapshot.metadata.term,
      progress: pr.toString(),
    });
    pr.becomeSnapshot(snapshot.metadata.index);
    pr.snapshotInFlight = true;
    this.snapshotUnreported.add(to);
    this.send(message({ type: MessageType.Snap, to, snapshot }));
    return true;
  }

  /** A heartbeat carries the commit index the follower can safely adopt: at most its match. */
  private sendHeartbeat(to: NodeId, context: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    const commit = Math.min(pr?.match ?? 0, this.raftLog.committed);
    this.send(
      message({
        type: MessageType.Heartbeat,
        to,
        commit,
        ...(context === undefined ? {} : { context }),
      }),
    );
  }

  /** Sends appends to every peer whose progress allows it. */
  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(context: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, context);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Applying, committing, durability

  /**
   * The application has applied entries up to `index`. A leader in an auto-leave joint
   * configuration proposes leaving it once the entry that entered it is applied.
   */
  appliedTo(index: number): void {
    const newApplied = Math.max(index, this.raftLog.applied);
    this.raftLog.appliedTo(newApplied);
    if (
      this.trk.config.autoLeave &&
      newApplied >= this.pendingConfIndex &&
      this.role === Role.Leader
    ) {
      const entry: Entry = {
        term: 0,
        index: 0,
        type: EntryType.ConfChange,
        data: LEAVE_JOINT_DATA,
      };
      if (this.appendEntries([entry])) {
        this.pendingConfIndex = this.raftLog.lastIndex();
        this.logger.info("initiating automatic transition out of joint configuration", {
          config: this.trk.confState(),
        });
        this.bcastAppend();
      }
    }
  }

  /**
   * Entries up to (`index`, `term`) are durable. A leader now counts itself toward their
   * commit (thesis §10.2.1: it may replicate in parallel with its own write, but not count an
   * entry it has not persisted).
   */
  stableTo(index: number, term: number): void {
    this.raftLog.stableTo(index, term);
    if (this.role !== Role.Leader || this.raftLog.termOrZero(index) !== term) return;
    const self = this.trk.progress.get(this.id);
    if (self !== undefined && self.maybeUpdate(index) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  /** Commits the highest index a quorum has made durable, if it is of the current term. */
  private maybeCommit(): boolean {
    invariant(this.role === Role.Leader, "only a leader counts a quorum to commit");
    const quorumIndex = this.trk.committed();
    const raised = this.raftLog.maybeCommit(
      quorumIndex,
      this.rules.commitTerm(this.raftLog, quorumIndex, this.term),
    );
    // Postcondition on what a leader commits: an entry of some term no later than its own (the
    // rules may demand exactly its own term; asserting only the bound leaves the simulator's
    // planted Figure 8 bug for its checkers to find).
    if (raised) {
      const committedTerm = this.raftLog.termOrZero(this.raftLog.committed);
      invariant(
        committedTerm > 0 && committedTerm <= this.term,
        () => `leader of term ${this.term} committed an entry of term ${committedTerm}`,
      );
    }
    return raised;
  }

  /** Payload bytes of committed entries handed to the application no longer count as uncommitted. */
  reduceUncommittedSize(sizeBytes: number): void {
    this.uncommittedSizeBytes = Math.max(0, this.uncommittedSizeBytes - sizeBytes);
  }

  /**
   * Assigns term and index to entries and appends them to the leader's log. False (and nothing
   * appended) if they would take the uncommitted bytes past the bound.
   */
  private appendEntries(entries: readonly Entry[]): boolean {
    // Only a leader appends its own entries, always after its last one: it never truncates.
    invariant(this.role === Role.Leader, "only a leader appends new entries");
    const sizeBytes = payloadsSize(entries);
    if (
      this.uncommittedSizeBytes > 0 &&
      sizeBytes > 0 &&
      this.uncommittedSizeBytes + sizeBytes > this.maxUncommittedEntriesSizeBytes
    ) {
      return false;
    }
    this.uncommittedSizeBytes += sizeBytes;
    let index = this.raftLog.lastIndex();
    const stamped: Entry[] = new Array<Entry>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      index++;
      stamped[i] = { term: this.term, index, type: e.type, data: e.data };
    }
    this.raftLog.append(stamped);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Roles

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeoutTicks =
      this.electionTimeoutTicks + this.random.int(this.electionTimeoutTicks);
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks;
  }

  /**
   * The highest index whose entry is durable and matches our log (what a leader may count for
   * itself). Entries below the unstable offset were declared durable by `advance`; the storage's
   * own last index is not used, because a write may be in flight while we step.
   */
  private durableLastIndex(): number {
    const unstable = this.raftLog.unstable;
    if (unstable.snapshot !== undefined) return 0;
    return unstable.entries.length > 0 ? unstable.offset - 1 : this.raftLog.lastIndex();
  }

  private reset(term: number): void {
    if (this.term !== term) {
      invariant(term > this.term, () => `term must not decrease: ${this.term} -> ${term}`);
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    const durable = this.durableLastIndex();
    this.trk.progress = new Map(
      [...this.trk.progress].map(([id, pr]) => {
        const fresh = this.newProgress(lastIndex + 1, pr.isLearner);
        if (id === this.id) fresh.match = durable;
        return [id, fresh];
      }),
    );
    this.pendingConfIndex = 0;
    this.uncommittedSizeBytes = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  private newProgress(next: number, isLearner: boolean): Progress {
    return new Progress({
      next,
      maxInflightMessages: this.maxInflightMessages,
      maxInflightBytes: this.maxInflightBytes,
      isLearner,
    });
  }

  /**
   * Becomes a follower of `lead` (NONE if unknown) in `term`.
   * @throws InternalError if `term` is below the current term (a bug in the caller).
   */
  becomeFollower(term: number, lead: NodeId): void {
    invariant(term >= this.term, () => `term must not decrease: ${this.term} -> ${term}`);
    this.reset(term);
    this.lead = lead;
    this.role = Role.Follower;
    this.checkRoleInvariants();
    this.logger.info("became follower", { term: this.term, lead });
  }

  private becomeCandidate(): void {
    invariant(this.role !== Role.Leader, "a leader cannot become a candidate directly");
    const previousTerm = this.term;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
    invariant(this.term === previousTerm + 1, "a candidate campaigns in the next term");
    this.checkRoleInvariants();
    this.logger.info("became candidate", { term: this.term });
  }

  private becomePreCandidate(): void {
    invariant(this.role !== Role.Leader, "a leader cannot become a pre-candidate");
    const { term, vote } = this;
    // A pre-vote changes neither term nor vote: only the role, and the votes being tallied.
    this.trk.resetVotes();
    this.lead = NONE;
    this.role = Role.PreCandidate;
    invariant(this.term === term && this.vote === vote, "a pre-vote changes neither term nor vote");
    this.checkRoleInvariants();
    this.logger.info("became pre-candidate", { term: this.term });
  }

  private becomeLeader(): void {
    // Only a candidate that won its election leads: never a follower, nor a pre-candidate (a
    // pre-vote only earns the right to campaign).
    invariant(this.role === Role.Candidate, () => `a ${this.role} cannot become leader`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = Role.Leader;
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) {
      // The leader's own progress is always in replicate state and active.
      self.becomeReplicate();
      self.match = this.durableLastIndex();
      self.recentActive = true;
    }
    // Conservatively treat any unapplied entry as a possible conf change: no new change until
    // everything before our term is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry of a new term (§8): committing it commits everything before it.
    const appended = this.appendEntries([
      { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) },
    ]);
    invariant(appended, "the empty no-op entry must never be refused");
    this.checkRoleInvariants();
    invariant(
      this.raftLog.lastTerm() === this.term,
      "a new leader's log ends with the no-op entry of its term",
    );
    this.logger.info("became leader", { term: this.term, lastIndex: this.raftLog.lastIndex() });
  }

  /**
   * What each role implies about vote, leader and indexes, asserted after every role change:
   * a candidate voted for itself and knows no leader; a leader also leads itself; every role has
   * applied ≤ committed ≤ last index.
   */
  private checkRoleInvariants(): void {
    switch (this.role) {
      case Role.Leader:
        invariant(
          this.lead === this.id && this.vote === this.id && this.term > 0,
          () => `leader ${this.id} of term ${this.term} has lead ${this.lead}, vote ${this.vote}`,
        );
        break;
      case Role.Candidate:
        invariant(
          this.vote === this.id && this.lead === NONE && this.term > 0,
          () =>
            `candidate ${this.id} of term ${this.term} has lead ${this.lead}, vote ${this.vote}`,
        );
        break;
      case Role.PreCandidate:
        invariant(this.lead === NONE, "a pre-candidate knows no leader");
        break;
      case Role.Follower:
        break;
    }
    const log = this.raftLog;
    invariant(
      log.applied <= log.committed && log.committed <= log.lastIndex(),
      () => `indexes out of order: ${log.toString()} lastIndex=${log.lastIndex()}`,
    );
  }

  /** True if this node may campaign: a voter, not waiting to persist a snapshot. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.raftLog.unstable.snapshot === undefined;
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    let lo = this.raftLog.applied + 1;
    const hi = this.raftLog.committed + 1;
    while (lo < hi) {
      const page = this.raftLog.slice(lo, hi, this.maxSizePerMsgBytes);
      for (const e of page) if (e.type === EntryType.ConfChange) return true;
      lo += page.length;
    }
    return false;
  }

  private hup(type: CampaignType): void {
    if (this.role === Role.Leader) return;
    if (!this.promotable()) {
      this.logger.debug("not promotable; ignoring campaign request", { term: this.term });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn("cannot campaign: committed conf changes are not yet applied", {
        term: this.term,
      });
      return;
    }
    if (this.term >= MAX_MESSAGE_TERM_OR_INDEX) {
      // Only a term forged by a peer before messages were validated can get here: a campaign
      // would take the term past what peers accept. Stay a follower (still able to vote and
      // follow) rather than throw on every election timeout.
      this.logger.warn("cannot campaign: the term is at its bound; replace this node's data", {
        term: this.term,
        maxTerm: MAX_MESSAGE_TERM_OR_INDEX,
      });
      return;
    }
    this.campaign(type);
  }

  private campaign(type: CampaignType): void {
    let term: number;
    let voteType: MessageType;
    if (type === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      // A pre-vote asks "would you vote for me in the next term?" without incrementing ours.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    // Our own vote counts at once: it is persisted with the hard state of this Ready, and the
    // Ready contract holds vote requests back until that is durable.
    const { result } = this.poll(this.id, true);
    if (result === VoteResult.Won) {
      // A single-voter configuration wins on its own vote.
      if (type === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    for (const id of this.trk.voterNodes()) {
      if (id === this.id) continue;
      this.logger.info("sent vote request", {
        type: voteType === MessageType.PreVote ? "pre-vote" : "vote",
        to: id,
        term,
      });
      this.send(
        message({
          type: voteType,
          to: id,
          term,
          index: this.raftLog.lastIndex(),
          logTerm: this.raftLog.lastTerm(),
          ...(type === CampaignType.Transfer ? { context: TRANSFER_CONTEXT } : {}),
        }),
      );
    }
  }

  private poll(id: NodeId, granted: boolean): ReturnType<ProgressTracker["tallyVotes"]> {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---------------------------------------------------------------------------------------------
  // Ticks

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === Role.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /**
   * Ticks from now until a tick does something (a heartbeat, a check-quorum round or an
   * election), at least 1. The runtime sleeps that long instead of waking on every tick; the
   * ticks in between only count (see RaftNode). A node that may not campaign (a learner, a node
   * outside the configuration) has nothing due and is looked at again after an election timeout.
   */
  ticksUntilDue(): number {
    const toElection = this.electionTimeoutTicks - this.electionElapsedTicks;
    if (this.role === Role.Leader) {
      return Math.max(
        1,
        Math.min(this.heartbeatTimeoutTicks - this.heartbeatElapsedTicks, toElection),
      );
    }
    if (!this.promotable()) return Math.max(1, toElection);
    return Math.max(1, this.randomizedElectionTimeoutTicks - this.electionElapsedTicks);
  }

  private tickElection(): void {
    this.electionElapsedTicks++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsedTicks = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsedTicks++;
    this.electionElapsedTicks++;
    if (this.electionElapsedTicks >= this.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      if (this.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that has not finished within an election timeout is abandoned.
      if (this.role === Role.Leader && this.leadTransferee !== NONE) {
        this.logger.info("leadership transfer timed out; aborting", {
          transferee: this.leadTransferee,
        });
        this.abortLeaderTransfer();
      }
    }
    if (this.role !== Role.Leader) return;
    if (this.heartbeatElapsedTicks >= this.heartbeatTimeoutTicks) {
      this.heartbeatElapsedTicks = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Step

  /**
   * Processes one message: term checks common to every role, then the role's handler.
   * @throws NotLeaderError, UnavailableError, ConflictError or OverloadedError when a proposal
   *   (`Prop`) or a read cannot be accepted. No state changes in that case.
   */
  step(m: Message): void {
    if (m.term > MAX_MESSAGE_TERM_OR_INDEX) {
      // The transport refuses such messages; this guard keeps a forged term from ever being
      // adopted and persisted, whatever delivered it (a term past the bound bricks elections).
      this.logger.warn("dropped a message whose term exceeds the bound", {
        type: m.type,
        from: m.from,
        term: m.term,
      });
      return;
    }
    if (m.term === 0) {
      // Local message.
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransferContext(m.context);
        const inLease =
          this.checkQuorum &&
          this.lead !== NONE &&
          this.electionElapsedTicks < this.electionTimeoutTicks;
        if (!force && inLease) {
          // We heard from a live leader within the minimum election timeout: ignore the
          // request, so a partitioned node cannot depose a healthy leader (thesis §4.2.3).
          const answer = `${m.type}:${m.from}:${m.term}:lease`;
          if (answer !== this.lastVoteAnswer) {
            this.logger.info("ignoring vote request within leader lease", {
              from: m.from,
              term: m.term,
              lead: this.lead,
            });
          }
          this.lastVoteAnswer = answer;
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we move to it only on winning the poll.
      } else {
        this.logger.info("received a message with a higher term", {
          type: m.type,
          from: m.from,
          term: m.term,
        });
        const fromLeader =
          m.type === MessageType.App ||
          m.type === MessageType.Heartbeat ||
          m.type === MessageType.Snap;
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader (e.g. after a partition) whose messages we ignore would never learn
        // of the new term; with check-quorum or pre-vote it would not be deposed by votes
        // either. Answering tells it to step down.
        this.send(message({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        // Reject, with our term, so the pre-candidate learns it is behind.
        this.send(
          message({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }),
        );
      }
      return;
    }

    // In any role: the report ends that snapshot's flight (see snapshotUnreported).
    if (m.type === MessageType.SnapStatus) this.snapshotUnreported.delete(m.from);
    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        return;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        return;
      case Role.Follower:
        this.stepFollower(m);
        return;
    }
  }

  private handleVoteRequest(m: Message): void {
    // We can vote if this is a repeat of a vote we already cast, if we have not voted and know
    // of no leader in this term, or if it is a pre-vote for a future term.
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = voteResponseType(m.type);
    const upToDate = this.rules.candidateUpToDate(this.raftLog, m.index, m.logTerm);
    // A request arrives up to three times (both connections and a datagram, see the transport):
    // each copy is answered, but only the first is worth a log line.
    const answer = `${m.type}:${m.from}:${m.term}:${canVote && upToDate ? "grant" : "reject"}`;
    const firstCopy = answer !== this.lastVoteAnswer;
    this.lastVoteAnswer = answer;
    if (canVote && upToDate) {
      if (firstCopy) this.logger.info("cast vote", { type: m.type, for: m.from, term: m.term });
      // The response carries the request's term: for a pre-vote that is a future term, and the
      // pre-candidate must recognise the answer as belonging to its poll.
      this.send(message({ type: respType, to: m.from, term: m.term }));
      if (m.type === MessageType.Vote) {
        this.electionElapsedTicks = 0;
        this.vote = m.from;
      }
    } else {
      if (firstCopy)
        this.logger.info("rejected vote", {
          type: m.type,
          from: m.from,
          term: m.term,
          vote: this.vote,
          lastIndex: this.raftLog.lastIndex(),
          lastTerm: this.raftLog.lastTerm(),
        });
      this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat(this.readOnly.lastPendingRequestContext());
        return;
      case MessageType.CheckQuorum:
        if (!this.trk.quorumActive()) {
          this.logger.warn("stepped down: a quorum is not active", { term: this.term });
          this.becomeFollower(this.term, NONE);
        }
        // Everyone but ourselves must prove they are alive again before the next check.
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case MessageType.Prop:
        this.leaderPropose(m);
        return;
      case MessageType.ReadIndex:
        this.leaderReadIndex(m);
        return;
      default:
        break;
    }

    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp:
        if (m.index > this.raftLog.lastIndex()) {
          // A follower acknowledges only what we sent it: a larger index is forged or corrupt,
          // and counting it would let a bogus match into the commit quorum.
          this.logger.warn("dropped an append response beyond our last index", {
            from: m.from,
            index: m.index,
            lastIndex: this.raftLog.lastIndex(),
          });
          return;
        }
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        pr.snapshotInFlight = false;
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) {
          // The snapshot did not arrive; forget it so the next attempt sends a fresh one.
          pr.pendingSnapshot = 0;
        }
        pr.becomeProbe();
        // Wait for the follower's append response (or a heartbeat round) before probing.
        pr.msgAppFlowPaused = true;
        this.logger.info("snapshot report", { from: m.from, failed: m.reject });
        return;
      case MessageType.Unreachable:
        // Optimistic replication may have lost messages: go back to probing.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case MessageType.TransferLeader:
        this.leaderTransfer(m.from, pr);
        return;
      default:
        return;
    }
  }

  private leaderPropose(m: Message): void {
    invariant(m.entries.length > 0, "a proposal must carry entries");
    if (!this.trk.progress.has(this.id)) {
      throw new UnavailableError(
        "this node was removed from the configuration and is stepping down; retry on the new leader",
      );
    }
    if (this.leadTransferee !== NONE) {
      throw new UnavailableError(
        `leadership is being transferred to node ${this.leadTransferee}; retry shortly`,
      );
    }
    let pendingConfIndex = this.pendingConfIndex;
    const lastIndex = this.raftLog.lastIndex();
    for (let i = 0; i < m.entries.length; i++) {
      const entry = m.entries[i] as Entry;
      if (entry.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(entry.data);
      const alreadyJoint = this.trk.config.voters.outgoing.size > 0;
      const leavesJoint = confChangeLeavesJoint(cc);
      if (pendingConfIndex > this.raftLog.applied) {
        throw new ConflictError(
          `a configuration change is pending at index ${pendingConfIndex} (applied ${this.raftLog.applied}); retry when it has applied`,
        );
      }
      if (alreadyJoint && !leavesJoint) {
        throw new ConflictError(
          "the configuration is joint; leave it (an empty conf change) before another change",
        );
      }
      if (!alreadyJoint && leavesJoint) {
        throw new ConflictError("the configuration is not joint; there is nothing to leave");
      }
      pendingConfIndex = lastIndex + i + 1;
    }
    if (!this.appendEntries(m.entries)) {
      throw new OverloadedError(
        `uncommitted entries exceed ${this.maxUncommittedEntriesSizeBytes} bytes; retry when the cluster catches up`,
      );
    }
    this.pendingConfIndex = pendingConfIndex;
    this.bcastAppend();
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      this.logger.debug("append rejected", {
        from: m.from,
        index: m.index,
        hint: m.rejectHint,
        hintTerm: m.logTerm,
      });
      // Fast back-off: skip every entry of a term the follower cannot have.
      let nextProbeIndex = m.rejectHint;
      if (m.logTerm > 0) {
        nextProbeIndex = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      }
      if (pr.maybeDecrTo(m.index, nextProbeIndex)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }

    const wasPaused = pr.isPaused();
    // In probe state a repeated acknowledgement of the current match still proves the
    // follower is in sync, so it may switch to replicate.
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === ProgressState.Probe)) {
      return;
    }
    // stepLeader refused acknowledgements past our log, and our log never shrinks while we lead.
    invariant(pr.match <= this.raftLog.lastIndex(), "a follower's match is past the leader's log");
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        // Once the follower has everything up to our first index it can be replicated to again.
        if (pr.match + 1 >= this.raftLog.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Fill the freed window: keep sending while there are entries and room for them.
    while (this.maybeSendAppend(m.from, false)) {
      // each call sends one message
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info("transferee caught up; sending timeout-now", { to: m.from });
      this.send(message({ type: MessageType.TimeoutNow, to: m.from }));
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    // If every append in a full window was lost, no ack will ever free it and the follower
    // would be stuck behind for good: free one slot so the append below goes out (a gap is then
    // rejected and the leader probes back), as etcd does.
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) {
      this.sendAppend(m.from);
    }
    if (this.readOnly.option !== ReadOnlyOption.Safe || m.context === undefined) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    if (jointVoteResult(this.trk.config.voters, acks) !== VoteResult.Won) return;
    for (const status of this.readOnly.advance(m.context)) {
      this.respondToReadIndex(status.request, status.index);
    }
  }

  private leaderTransfer(transferee: NodeId, pr: Progress): void {
    if (pr.isLearner) {
      this.logger.info("ignoring leadership transfer to a learner", { transferee });
      return;
    }
    const last = this.leadTransferee;
    if (last !== NONE) {
      if (last === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    this.logger.info("starting leadership transfer", { transferee });
    // The transfer must finish within an election timeout; count from now.
    this.electionElapsedTicks = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) {
      this.send(message({ type: MessageType.TimeoutNow, to: transferee }));
    } else {
      this.sendAppend(transferee);
    }
  }

  /** Stops a leadership transfer in progress; proposals are accepted again. */
  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private leaderReadIndex(m: Message): void {
    // Until it commits an entry of its term, a new leader does not know the commit index of
    // the cluster (thesis §6.4 step 1): hold the read until the no-op commits.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.trk.isSingleton()) {
      // The only voter is its own quorum.
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    if (this.readOnly.option === ReadOnlyOption.LeaseBased) {
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    const context = m.entries[0]?.data;
    if (context === undefined) return;
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, context);
    this.bcastHeartbeat(context);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.sendReadIndexResponse(m);
  }

  private respondToReadIndex(request: Message, index: number): void {
    const context = request.entries[0]?.data ?? new Uint8Array(0);
    if (request.from === NONE || request.from === this.id) {
      this.readStates.push({ index, requestCtx: context });
      return;
    }
    this.send(
      message({
        type: MessageType.ReadIndexResp,
        to: request.from,
        index,
        entries: request.entries,
      }),
    );
  }

  private stepCandidate(m: Message): void {
    const myResponseType =
      this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new NotLeaderError();
      case MessageType.ReadIndex:
        throw new NotLeaderError();
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        return;
      default:
        break;
    }
    if (m.type !== myResponseType) return;
    // Answers come in up to three copies too; a voter's first one counts (and is logged).
    const firstCopy = !this.trk.votes.has(m.from);
    const { granted, rejected, result } = this.poll(m.from, !m.reject);
    if (firstCopy) {
      this.logger.info("vote tally", { granted, rejected, term: this.term, role: this.role });
    }
    if (result === VoteResult.Won) {
      if (this.role === Role.PreCandidate) {
        this.campaign(CampaignType.Election);
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === VoteResult.Lost) {
      // A rejected pre-vote with a higher term was already handled by the term check.
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw new NotLeaderError();
        if (this.disableProposalForwarding) throw new NotLeaderError({ id: this.lead });
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.App:
        this.electionElapsedTicks = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsedTicks = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsedTicks = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) {
          throw new NotLeaderError();
        }
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.TimeoutNow:
        this.logger.info("received timeout-now; campaigning to take over leadership", {
          from: m.from,
          term: this.term,
        });
        // A transfer skips the pre-vote: the leader itself asked for this election.
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) throw new NotLeaderError();
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.ReadIndexResp:
        if (m.entries.length !== 1) return;
        this.readStates.push({ index: m.index, requestCtx: (m.entries[0] as Entry).data });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    invariant(this.role === Role.Follower, "only a follower accepts appends");
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is already settled; tell the leader where we are.
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const malformed = malformedAppend(m);
    if (malformed !== undefined) {
      // A real leader never sends this; a forged or corrupt append must not reach the log,
      // whose invariants would otherwise fail on it.
      this.logger.warn("dropped a malformed append", { from: m.from, reason: malformed });
      return;
    }
    const lastNewIndex = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNewIndex !== undefined) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: lastNewIndex }));
      return;
    }
    // Our log does not match at m.index. Suggest the largest index whose term is at most the
    // leader's term there: everything after it in our log certainly conflicts (fast back-off).
    const hint = this.raftLog.findConflictByTerm(
      Math.min(m.index, this.raftLog.lastIndex()),
      m.logTerm,
    );
    this.send(
      message({
        type: MessageType.AppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends at most our match index, which we acknowledged as durable, so a commit
    // past our last index is a forged or corrupt message (or our disk lost acknowledged
    // entries): never fatal for peer input. Clamp it to what we hold, as etcd's raft does
    // (commitTo(min(m.Commit, lastIndex))), and say so.
    const lastIndex = this.raftLog.lastIndex();
    if (m.commit > lastIndex) {
      this.logger.warn("heartbeat commit beyond our last index; clamped", {
        from: m.from,
        commit: m.commit,
        lastIndex,
      });
    }
    this.raftLog.commitTo(Math.min(m.commit, lastIndex));
    this.send(
      message({
        type: MessageType.HeartbeatResp,
        to: m.from,
        ...(m.context === undefined ? {} : { context: m.context }),
      }),
    );
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (snapshot === undefined) return;
    if (this.restore(snapshot)) {
      this.logger.info("restored snapshot", {
        index: snapshot.metadata.index,
        term: snapshot.metadata.term,
      });
      this.send(
        message({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() }),
      );
    } else {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader; false if it is stale or does not apply to us. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.raftLog.committed) return false;
    if (this.role !== Role.Follower) {
      // Defence in depth: only a follower installs snapshots. Move to a new term as follower.
      this.logger.warn("non-follower received a snapshot; becoming follower", { term: this.term });
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const inConfig =
      confState.voters.includes(this.id) ||
      confState.learners.includes(this.id) ||
      confState.votersOutgoing.includes(this.id);
    if (!inConfig) {
      this.logger.warn("ignoring snapshot whose configuration does not include us", { index });
      return false;
    }
    if (this.raftLog.matchTerm(index, term)) {
      // We already have the entries: fast-forward the commit index instead.
      this.raftLog.commitTo(index);
      return false;
    }
    // Check the configuration before touching the log: a malformed one (from a broken or
    // hostile peer) is refused, never half-installed.
    let restored: ChangeResult;
    try {
      restored = restoreConfState(confState, {
        lastIndex: index,
        maxInflightMessages: this.maxInflightMessages,
        maxInflightBytes: this.maxInflightBytes,
      });
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      this.logger.warn("ignoring snapshot with a malformed configuration", {
        index,
        error: error.message,
      });
      return false;
    }
    this.raftLog.restore(snapshot);
    invariant(this.raftLog.committed === index, "a restored snapshot is committed");
    this.trk = new ProgressTracker({
      maxInflightMessages: this.maxInflightMessages,
      maxInflightBytes: this.maxInflightBytes,
    });
    this.switchToConfig(restored);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Membership

  /**
   * Applies a committed conf change to the tracker (call when its entry is applied).
   * @returns the new configuration.
   * @throws InvalidArgumentError if the change is not valid for the current configuration.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const changer = new Changer({
      config: this.trk.config,
      progress: this.trk.progress,
      lastIndex: this.raftLog.lastIndex(),
      maxInflightMessages: this.maxInflightMessages,
      maxInflightBytes: this.maxInflightBytes,
    });
    let result: ChangeResult;
    if (confChangeLeavesJoint(cc)) {
      result = changer.leaveJoint();
    } else {
      const { entersJoint, autoLeave } = confChangeEntersJoint(cc);
      result = entersJoint ? changer.enterJoint(autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(result);
  }

  private switchToConfig(result: ChangeResult): ConfState {
    this.trk.config = result.config;
    this.trk.progress = result.progress;
    const confState = this.trk.confState();
    const self = this.trk.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;

    if ((self === undefined || this.isLearner) && this.role === Role.Leader) {
      // We were removed or demoted. Keep leading (no new proposals accepted) unless configured
      // to step down, so the change itself commits; a removed leader cannot win again.
      if (this.stepDownOnRemoval) {
        this.logger.info("stepping down: removed from the voters", { term: this.term });
        this.becomeFollower(this.term, NONE);
      }
      return confState;
    }
    if (this.role !== Role.Leader || confState.voters.length === 0) return confState;

    // A smaller quorum may commit at once; new members need their first appends.
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.config.voters.incoming.has(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return confState;
  }

  /** Election bookkeeping exposed for status and tests. */
  electionState(): {
    electionElapsedTicks: number;
    randomizedElectionTimeoutTicks: number;
    uncommittedSizeBytes: number;
  } {
    return {
      electionElapsedTicks: this.electionElapsedTicks,
      randomizedElectionTimeoutTicks: this.randomizedElectionTimeoutTicks,
      uncommittedSizeBytes: this.uncommittedSizeBytes,
    };
  }

  /** Reads waiting for a heartbeat quorum or for the first commit of this term. */
  pendingReadCount(): number {
    return this.readOnly.pendingCount + this.pendingReadIndexMessages.length;
  }
}
