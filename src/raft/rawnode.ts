import { invariant } from "../common/assert.js";
import { InvalidArgumentError } from "../common/errors.js";
import { encodeConfChange } from "./conf-change-codec.js";
import type { RaftConfig } from "./config.js";
import { payloadsSize } from "./entries.js";
import { CoreInspection, type RaftInspection } from "./inspection.js";
import { Raft } from "./raft.js";
import type { ProgressState } from "./tracker/index.js";
import {
  EntryType,
  message,
  MessageType,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  Role,
  type Snapshot,
  type SoftState,
} from "./types.js";

/**
 * Everything the application must do after a batch of inputs, in this order (the Ready
 * contract):
 *
 * 1. **Persist** `hardState` (if present), `entries` (appending, replacing any conflicting
 *    suffix) and `snapshot` (if present) to stable storage. If `mustSync`, fsync before step 2.
 * 2. **Send** `messages`. Messages for which {@link canSendBeforePersist} is true (a leader's
 *    appends, heartbeats, snapshots) may be sent before or during step 1: a leader may write
 *    its own log in parallel with replicating it (thesis §10.2.1), because it counts itself
 *    toward a commit only after {@link RawNode.advance} says its entries are durable. Every
 *    other message (votes, append acknowledgements) must wait for step 1: it promises that
 *    state is durable.
 * 3. **Apply** `snapshot` to the state machine, then `committedEntries` in order; for each
 *    conf change entry call {@link RawNode.applyConfChange}. Serve `readStates` once the
 *    applied index reaches each one's `index`.
 * 4. Call {@link RawNode.advance}.
 *
 * Only one Ready is outstanding at a time: call `ready()` again only after `advance()`.
 */
export interface Ready {
  /** Present when the leader or role changed. */
  readonly softState?: SoftState;
  /** Present when term, vote or commit changed. */
  readonly hardState?: HardState;
  /** Reads confirmed since the last Ready. */
  readonly readStates: readonly ReadState[];
  /** Entries to append to stable storage. */
  readonly entries: readonly Entry[];
  /** A snapshot to persist and apply. */
  readonly snapshot?: Snapshot;
  /** Committed entries to apply (they were persisted in this or an earlier Ready). */
  readonly committedEntries: readonly Entry[];
  /** Messages to send (see the contract above for when). */
  readonly messages: readonly Message[];
  /** True if term, vote or entries changed: the write must be fsynced before sending. */
  readonly mustSync: boolean;
}

/** The leader's view of one peer, as reported by {@link RawNode.status}. */
export interface PeerProgress {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly paused: boolean;
  readonly inflightMessages: number;
  readonly isLearner: boolean;
}

/** A snapshot of the node's state for operators and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly leader: NodeId;
  readonly role: Role;
  readonly leadTransferee: NodeId;
  readonly config: ConfState;
  /** Per-peer progress; only on the leader. */
  readonly progress: ReadonlyMap<NodeId, PeerProgress>;
}

/** How sending a snapshot to a peer ended. */
export type SnapshotOutcome = "finish" | "failure";

const LOCAL_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
]);

const RESPONSE_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.AppResp,
  MessageType.VoteResp,
  MessageType.HeartbeatResp,
  MessageType.PreVoteResp,
  MessageType.ReadIndexResp,
]);

/**
 * True if `m` may be sent before the Ready that produced it is durable: a leader's appends,
 * heartbeats and snapshots, and forwarded requests. Votes and acknowledgements must wait.
 */
export function canSendBeforePersist(m: Message): boolean {
  return (
    m.type === MessageType.App ||
    m.type === MessageType.Heartbeat ||
    m.type === MessageType.Snap ||
    m.type === MessageType.TimeoutNow ||
    m.type === MessageType.Prop ||
    m.type === MessageType.ReadIndex ||
    m.type === MessageType.TransferLeader
  );
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Set by RawNode's static block: the one way to the sealed core, for {@link rawNodeCore}. */
let coreOf: ((node: RawNode) => Raft) | undefined;

/**
 * The application's handle on one raft node (etcd's RawNode): a pure, single-threaded API.
 * Inputs: {@link tick}, {@link step}, {@link propose}, {@link proposeConfChange},
 * {@link campaign}, {@link readIndex}, {@link transferLeader}, {@link reportUnreachable},
 * {@link reportSnapshot}. Output: {@link ready}, then {@link advance}. It performs no I/O and
 * reads no clock: time passes only through `tick()`.
 */
export class RawNode {
  /** The state machine. Sealed: callers use the methods, {@link inspect} to read. */
  readonly #raft: Raft;
  readonly #inspection: CoreInspection;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private outstanding: Ready | undefined;

  static {
    coreOf = (node) => node.#raft;
  }

  /**
   * Creates a node from the state in `config.storage`. A new cluster's nodes start from a
   * storage whose conf state lists the initial voters.
   * @throws InvalidArgumentError on a bad config.
   */
  constructor(config: RaftConfig) {
    this.#raft = new Raft(config);
    this.#inspection = new CoreInspection(this.#raft);
    this.prevSoftState = this.#raft.softState();
    this.prevHardState = this.#raft.hardState();
  }

  /** Advances logical time by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.#raft.tick();
  }

  /**
   * How many ticks from now the next one does something (at least 1): a runtime may sleep until
   * then and deliver the ticks in between at once, or as messages arrive.
   */
  ticksUntilDue(): number {
    return this.#raft.ticksUntilDue();
  }

  /** Starts an election now (pre-vote first if enabled). */
  campaign(): void {
    this.#raft.step(message({ type: MessageType.Hup }));
  }

  /**
   * Proposes commands to be appended to the log, in order. On the leader, returns the term and
   * the index of the last one; on a follower the proposal is forwarded and `undefined` returned.
   * An entry at the returned index with another term means the proposal was lost.
   * @throws NotLeaderError if no leader is known (or forwarding is disabled).
   * @throws UnavailableError during a leadership transfer or after removal.
   * @throws OverloadedError if the uncommitted bytes bound is reached.
   */
  propose(...commands: Uint8Array[]): { term: number; index: number } | undefined {
    if (commands.length === 0) throw new InvalidArgumentError("propose needs at least one command");
    const entries: Entry[] = commands.map((data) => ({
      term: 0,
      index: 0,
      type: EntryType.Normal,
      data,
    }));
    return this.proposeEntries(entries);
  }

  /**
   * Proposes a membership change. It takes effect when the entry is applied and the
   * application calls {@link applyConfChange}.
   * @throws ConflictError if another change is pending or the joint state forbids it.
   * @throws the errors of {@link propose}.
   */
  proposeConfChange(cc: ConfChange): { term: number; index: number } | undefined {
    return this.proposeEntries([
      { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) },
    ]);
  }

  private proposeEntries(entries: Entry[]): { term: number; index: number } | undefined {
    const isLeader = this.#raft.role === "leader";
    this.#raft.step(message({ type: MessageType.Prop, from: this.#raft.id, entries }));
    if (!isLeader) return undefined;
    return { term: this.#raft.term, index: this.#raft.raftLog.lastIndex() };
  }

  /**
   * Delivers a message from a peer. Local-only message types and responses from unknown peers
   * are ignored; a forwarded proposal the leader cannot take is dropped (its proposer times
   * out and retries).
   */
  step(m: Message): void {
    if (LOCAL_MESSAGE_TYPES.has(m.type)) return;
    // Term 0 marks a local message inside the core (no term checks); from a peer only requests
    // that are not bound to a term may carry it (etcd's raft treats the rest as local too, which
    // would let a peer skip the term checks).
    if (m.term === 0 && m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) return;
    // Only a leader takes a peer's proposal: a follower passing it on could bounce it between
    // two nodes that each name the other leader for a moment (the proposer times out instead).
    if (m.type === MessageType.Prop && this.#raft.role !== Role.Leader) return;
    if (
      RESPONSE_MESSAGE_TYPES.has(m.type) &&
      !this.#raft.trk.progress.has(m.from) &&
      m.type !== MessageType.ReadIndexResp
    ) {
      return;
    }
    // A forwarded leadership transfer is a request too: if it reaches a node that has since
    // lost track of the leader, stepFollower's NotLeaderError (meant for the local caller of
    // transferLeader) must not escape to the transport; drop it as etcd does.
    if (
      m.type === MessageType.Prop ||
      m.type === MessageType.ReadIndex ||
      m.type === MessageType.TransferLeader
    ) {
      try {
        this.#raft.step(m);
      } catch {
        // The sender learns nothing either way; it retries on timeout.
      }
      return;
    }
    this.#raft.step(m);
  }

  /**
   * Requests a linearizable read. When leadership is confirmed, a {@link ReadState} with this
   * `requestCtx` appears in a Ready; the read may be served once applied reaches its index.
   * `requestCtx` must be unique among reads in flight.
   * @throws NotLeaderError if no leader is known.
   */
  readIndex(requestCtx: Uint8Array): void {
    this.#raft.step(
      message({
        type: MessageType.ReadIndex,
        from: this.#raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data: requestCtx }],
      }),
    );
  }

  /**
   * Asks the leader to hand leadership to `transferee` (a voter). Proposals are refused while
   * it runs; it is abandoned after an election timeout.
   * @throws NotLeaderError on a follower that knows no leader.
   */
  transferLeader(transferee: NodeId): void {
    this.#raft.step(message({ type: MessageType.TransferLeader, from: transferee }));
  }

  /** The transport could not reach `id`: the leader goes back to probing it. */
  reportUnreachable(id: NodeId): void {
    this.#raft.step(message({ type: MessageType.Unreachable, from: id }));
  }

  /** Reports how sending a snapshot to `id` ended, so the leader resumes replicating to it. */
  reportSnapshot(id: NodeId, outcome: SnapshotOutcome): void {
    this.#raft.step(
      message({ type: MessageType.SnapStatus, from: id, reject: outcome === "failure" }),
    );
  }

  /**
   * Applies a committed membership change; call it when its entry is applied.
   * @returns the configuration now in force.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.#raft.applyConfChange(cc);
  }

  /** True if there is anything for a Ready to carry. */
  hasReady(): boolean {
    const r = this.#raft;
    const soft = r.softState();
    if (soft.leader !== this.prevSoftState.leader || soft.role !== this.prevSoftState.role) {
      return true;
    }
    if (!sameHardState(r.hardState(), this.prevHardState)) return true;
    if (r.raftLog.unstable.snapshot !== undefined) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.entries.length > 0) return true;
    return r.raftLog.hasNextCommittedEntries();
  }

  /**
   * Collects what must be persisted, sent and applied (see {@link Ready} for the contract).
   * @throws InternalError if the previous Ready was not advanced.
   */
  ready(): Ready {
    invariant(this.outstanding === undefined, "ready() called before advance()");
    const r = this.#raft;
    const soft = r.softState();
    const hard = r.hardState();
    const entries = r.raftLog.unstableEntries();
    const snapshot = r.raftLog.unstable.snapshot;
    const softChanged =
      soft.leader !== this.prevSoftState.leader || soft.role !== this.prevSoftState.role;
    const hardChanged = !sameHardState(hard, this.prevHardState);
    const rd: Ready = {
      ...(softChanged ? { softState: soft } : {}),
      ...(hardChanged ? { hardState: hard } : {}),
      readStates: r.readStates,
      entries,
      ...(snapshot === undefined ? {} : { snapshot }),
      committedEntries: r.raftLog.nextCommittedEntries(),
      messages: r.msgs,
      mustSync:
        entries.length > 0 ||
        hard.term !== this.prevHardState.term ||
        hard.vote !== this.prevHardState.vote,
    };
    if (softChanged) this.prevSoftState = soft;
    if (hardChanged) this.prevHardState = hard;
    r.msgs = [];
    r.readStates = [];
    this.outstanding = rd;
    return rd;
  }

  /**
   * Declares the outstanding Ready done: its entries, hard state and snapshot are durable and
   * its committed entries applied. The leader now counts its own entries toward commit.
   */
  advance(): void {
    const rd = this.outstanding;
    invariant(rd !== undefined, "advance() called without an outstanding Ready");
    this.outstanding = undefined;
    const r = this.#raft;
    if (rd.snapshot !== undefined) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) r.stableTo(lastEntry.index, lastEntry.term);
    r.reduceUncommittedSize(payloadsSize(rd.committedEntries));
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    const applied = lastCommitted?.index ?? rd.snapshot?.metadata.index ?? 0;
    if (applied > 0) r.appliedTo(applied);
  }

  /** The node's term, role, leader, indexes, configuration and (on the leader) peer progress. */
  status(): RaftStatus {
    const r = this.#raft;
    const progress = new Map<NodeId, PeerProgress>();
    if (r.role === "leader") {
      r.trk.visit((id, pr) => {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          paused: pr.isPaused(),
          inflightMessages: pr.inflights.count,
          isLearner: pr.isLearner,
        });
      });
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      leader: r.lead,
      role: r.role,
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
      progress,
    };
  }

  /** The leader this node knows of, or NONE. */
  get leader(): NodeId {
    return this.#raft.lead === NONE ? NONE : this.#raft.lead;
  }

  /** This node's role now. */
  get role(): Role {
    return this.#raft.role;
  }

  /** The configuration in force (shared and immutable: built once per configuration). */
  confState(): ConfState {
    return this.#raft.trk.confState();
  }

  /**
   * A read-only, live view of the core (term, vote, role, indexes, configuration) for the
   * runtime and the simulator's checkers; the same object every call, and reading it allocates
   * nothing.
   */
  inspect(): RaftInspection {
    return this.#inspection;
  }
}

/**
 * The core inside `node`, to read and tamper with in white-box tests of `src/raft`. Only
 * `src/raft/testing.ts` may import it (a lint rule says so); everyone else uses the methods and
 * {@link RawNode.inspect}.
 */
export function rawNodeCore(node: RawNode): Raft {
  invariant(coreOf !== undefined, "RawNode's static block registers the core accessor");
  return coreOf(node);
}
