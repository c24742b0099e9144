import { invariant } from "../common/assert.js";
import {
  InvalidArgumentError,
  isBlixardError,
  NotLeaderError,
  OverloadedError,
  StorageFullError,
  TooLargeError,
  UnavailableError,
} from "../common/errors.js";
import type { Random } from "../common/random.js";
import type { RaftConfig } from "../raft/config.js";
import type { RaftInspection } from "../raft/inspection.js";
import { SILENT_LOGGER, type Logger } from "../common/logger.js";
import { SnapshotOutOfDateError } from "../raft/storage.js";
import { decodeConfChange } from "../raft/conf-change-codec.js";
import { canSendBeforePersist, RawNode, type RaftStatus, type Ready } from "../raft/rawnode.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  NONE,
  Role,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
} from "../raft/types.js";
import type { StateMachine } from "../statemachine/state-machine.js";
import type { LogStore } from "../storage/log-store.js";
import { Operation, type OperationOptions } from "./operation.js";
import type { Clock, TimerHandle, Transport } from "./ports.js";
import {
  commandOf,
  encodeForwardedProposal,
  forwardedBy,
  forwardedSequence,
  isForwardedProposal,
} from "./forwarded-proposal.js";
import {
  FORWARDED_PROPOSALS_PROTOCOL_VERSION,
  ProtocolGate,
  protocolEntryVersion,
} from "./protocol-gate.js";
import { ReadBatcher } from "./read-batcher.js";
import { snapshotDue, type SnapshotPolicy } from "./snapshot-policy.js";
import { SlicedSnapshotRunner } from "./sliced-snapshot-runner.js";

/** Options of a {@link RaftNode}. */
export interface RaftNodeOptions<Result> {
  readonly id: NodeId;
  readonly logStore: LogStore;
  readonly stateMachine: StateMachine<Result>;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  /** Options passed to the consensus core (id, storage, random and applied are set here). */
  readonly raft?: Partial<Omit<RaftConfig, "id" | "storage" | "random" | "applied" | "logger">>;
  /** Milliseconds per raft tick. Default 100 (with 10 election ticks: a 1–2 s election timeout). */
  readonly tickIntervalMs?: number;
  /** Default timeout of proposals, reads and membership changes. Default 5000 ms. */
  readonly operationTimeoutMs?: number;
  /** Proposals waiting to be applied, at most; past it `propose` fails with OVERLOADED. Default 4096. */
  readonly maxPendingProposals?: number;
  /** Largest command accepted, in bytes; larger ones fail with TOO_LARGE. Default 1 MiB. */
  readonly maxCommandSizeBytes?: number;
  /** Take a snapshot after this many applied entries. Default 100000. */
  readonly snapshotEveryEntries?: number;
  /**
   * Or once the bytes of commands applied since the last snapshot reach this fraction of that
   * snapshot's size (see snapshot-policy.ts), bounded by `snapshotMinBytes` and
   * `snapshotEveryBytes`. Default 1 (about 2 bytes of snapshot written per byte of state).
   */
  readonly snapshotLogRatio?: number;
  /** The byte threshold's floor. Default 4 MiB. */
  readonly snapshotMinBytes?: number;
  /** The byte threshold's cap: a snapshot is due after this many bytes at the latest. Default 256 MiB. */
  readonly snapshotEveryBytes?: number;
  /** Entries kept in the log behind a snapshot, so slow followers need no snapshot. Default 5000. */
  readonly snapshotTrailingEntries?: number;
  /** A learner is promoted only when at most this many entries behind the leader. Default 100. */
  readonly promotionMaxLagEntries?: number;
  /**
   * A follower hands a proposal to the leader over the peer transport and answers it from its
   * own apply (default true). False: a follower refuses proposals with NOT_LEADER and the
   * leader's id, and whoever called it must send them to the leader.
   */
  readonly forwardProposals?: boolean;
  /**
   * The cluster's protocol version (`protocol-gate.ts`): forwarding is used only while it is
   * open, and the protocol entries the leader appends are applied to it. Default: a gate that is
   * open from the start (every node of the cluster runs this release).
   */
  readonly protocolGate?: ProtocolGate;
  /** Called once if the node stops on a fatal error (storage corruption, a bug). */
  readonly onFatal?: (error: Error) => void;
  /**
   * Called with every membership change this node applies (on every node, leader or not, its
   * `context` included: e.g. a new member's addresses) and the configuration after it; and with
   * `change` undefined and the current configuration on {@link RaftNode.start} and after a
   * snapshot from the leader is installed. The composition uses it to teach the transport and
   * the member directory about peers. Called synchronously inside the apply loop: keep it quick;
   * an exception is logged and otherwise ignored.
   */
  readonly onConfChange?: (change: ConfChange | undefined, confState: ConfState) => void;
  /**
   * Called when this node's role, term or known leader changes (after the Ready that made it
   * durable), e.g. to log it. Synchronous: keep it quick; an exception is logged and ignored.
   */
  readonly onRaftStateChange?: (state: RaftStateChange) => void;
  readonly logger?: Logger;
}

/** What {@link RaftNodeOptions.onRaftStateChange} is told. */
export interface RaftStateChange {
  readonly role: Role;
  readonly term: number;
  /** The leader this node knows of, or NONE. */
  readonly leader: NodeId;
}

interface PendingProposal {
  readonly term: number;
  /** Resolved with the state machine's result, or the new ConfState for a membership change. */
  readonly operation: Operation<unknown>;
}

interface QueuedProposal<Result> {
  readonly data: Uint8Array;
  readonly operation: Operation<Result>;
  readonly leaderOnly: boolean;
}

/** Per-call options of {@link RaftNode.propose}. */
export interface ProposeOptions extends OperationOptions {
  /**
   * Propose only while this node leads; never forward. For a leader's own decisions (a worker
   * gone silent, a lease past its deadline): a node that lost leadership must not have them
   * carried out by the next leader, which decides afresh.
   */
  readonly leaderOnly?: boolean;
}

/**
 * The Ready loop hands the event loop back after this long (ticks and peers' messages run, then
 * it resumes), so heartbeats and votes are never starved by a backlog of work.
 */
const READY_TURN_BUDGET_MS = 5;

/**
 * A tick timer that runs at most this early is taken as on time. Node arms a timer from its loop
 * clock, a whole-millisecond reading taken when the turn began, so a timer armed late in a turn
 * runs up to about a millisecond before the time it was armed for; counted as it is, it would
 * hand the core one tick short of the due one and wake again a millisecond later for it (half
 * of an idle leader's timer wake-ups were such second wake-ups). A timer that runs earlier
 * than this (armed in a long turn) still counts only the ticks that really elapsed.
 */
const TICK_TIMER_EARLY_TOLERANCE_MS = 2;

/** Bytes of commands a follower puts in one forwarded proposal message, at most (one frame). */
const FORWARD_BATCH_BYTES = 1024 * 1024;

/** After a snapshot failed on a full disk, the next attempt waits this long. */
const SNAPSHOT_RETRY_AFTER_FULL_MS = 1000;

const RUNTIME_DEFAULTS = Object.freeze({
  tickIntervalMs: 100,
  operationTimeoutMs: 5000,
  maxPendingProposals: 4096,
  maxCommandSizeBytes: 1024 * 1024,
  snapshotEveryEntries: 100_000,
  snapshotLogRatio: 1,
  snapshotMinBytes: 4 * 1024 * 1024,
  snapshotEveryBytes: 256 * 1024 * 1024,
  snapshotTrailingEntries: 5000,
  maxCommittedSizePerReadyBytes: 1024 * 1024,
  promotionMaxLagEntries: 100,
});

/** The node's state for operators: the core's status plus the runtime's. */
export interface RaftNodeStatus extends RaftStatus {
  readonly pendingProposals: number;
  readonly snapshotIndex: number;
  /** Snapshots this node took (and wrote) since it started. */
  readonly snapshotsTaken: number;
  /** Bytes of snapshot data this node wrote since it started. */
  readonly snapshotBytesWritten: number;
  /** Snapshots this node sent to followers since it started (as leader). */
  readonly snapshotsSent: number;
  /** Proposals this node forwarded to the leader over the peer transport since it started. */
  readonly proposalsForwarded: number;
  /** The newest peer protocol this node speaks (see protocol-gate.ts). */
  readonly protocolVersion: number;
  /** The cluster's protocol version as far as this node applied the log (see protocol-gate.ts). */
  readonly clusterProtocolVersion: number;
  /** Entries in the forwarded-proposal envelope this node applied since it started (replay included). */
  readonly forwardedEntriesApplied: number;
  /** The lowest log index of such an entry applied since it started, or 0. */
  readonly firstForwardedIndex: number;
  /** Forwarded proposals this node refused to append as leader because the gate was closed. */
  readonly forwardedProposalsRefused: number;
  /** Times the Ready loop handed the event loop back on its turn budget since it started. */
  readonly readyTurnsYielded: number;
  readonly stopped: boolean;
}

/**
 * The runtime that drives one consensus core: clock ticks → `tick`, transport → `step`,
 * `Ready` → persist, send, apply, `advance`. It turns proposals into promises resolved with the
 * state machine's result, serves linearizable reads through ReadIndex (concurrent reads share
 * one round), changes membership, takes snapshots and compacts the log, and recovers from its
 * log store on start. All I/O goes through the ports, so the simulator runs it unchanged.
 *
 * A follower forwards proposals to the leader over the peer transport, each in an envelope
 * naming it (`forwarded-proposal.ts`), and resolves them when it applies that entry itself;
 * with no leader known they fail with NOT_LEADER. Membership changes and leadership transfers
 * are accepted on the leader only (NOT_LEADER with the leader's id elsewhere).
 */
export class RaftNode<Result = unknown> {
  readonly id: NodeId;
  private readonly raw: RawNode;
  private readonly options: RaftNodeOptions<Result>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly tickIntervalMs: number;
  private readonly operationTimeoutMs: number;
  private readonly maxPendingProposals: number;
  private readonly maxCommandSizeBytes: number;
  private readonly snapshotPolicy: SnapshotPolicy;
  /** The size of the newest snapshot's data (0 until one is taken or installed here). */
  private lastSnapshotBytes = 0;
  /** Bytes of commands applied since the newest snapshot (bounds the in-memory log too). */
  private bytesSinceSnapshot = 0;
  private readonly snapshotTrailingEntries: number;
  private readonly promotionMaxLagEntries: number;

  /** Proposals appended to the leader's log, by log index. */
  private readonly pending = new Map<number, PendingProposal>();
  /**
   * Proposals this follower forwarded, by sequence number, until it applies their entries. One
   * that is lost (the leader dropped it or changed) is settled by its timeout: its outcome is
   * unknown, as for any write that timed out.
   */
  private readonly forwarded = new Map<number, Operation<unknown>>();
  private nextForwardSequence = 1;
  /** Random per start: see `forwarded-proposal.ts`. */
  private readonly incarnation: number;
  private readonly forwardProposals: boolean;
  private proposalsForwarded = 0;
  private readonly gate: ProtocolGate;
  private forwardedEntriesApplied = 0;
  private firstForwardedIndex = 0;
  private forwardedProposalsRefused = 0;
  /** Proposals accepted by `propose` and not yet handed to the core (batched per turn). */
  private queued: QueuedProposal<Result>[] = [];
  private flushScheduled = false;
  private readonly reads: ReadBatcher<StateMachine<Result>>;
  /** Leadership transfers waiting to see their transferee lead. */
  private readonly transfers = new Map<Operation<void>, NodeId>();

  private appliedIndex: number;
  /** Entries up to here hold data the state machine may keep views into (see LogStore). */
  private readonly stableDataThroughIndex: number;
  private snapshotIndex: number;
  /** Take a snapshot at the next chance, whatever the cadence (a new peer needs one). */
  private snapshotWanted = false;
  /** No snapshot is attempted before this time (set after one failed on a full disk). */
  private snapshotNotBeforeMs = 0;
  private snapshotsTaken = 0;
  private snapshotBytesWritten = 0;
  private snapshotsSent = 0;
  /** Times the Ready loop yielded on its turn budget (a sign of a backlog). */
  private turnsYielded = 0;
  /** The snapshot being encoded or written in the background, if any (one at a time). */
  private snapshotTask: Promise<void> | undefined;
  /** The encoding of that snapshot while it runs between turns (state machines that capture). */
  private snapshotRunner: SlicedSnapshotRunner | undefined;
  private processing = false;
  private stopped = false;
  /** Set once the transport and log store are being closed (by stop or a fatal error). */
  private closing: Promise<void> | undefined;
  private fatal: Error | undefined;
  /**
   * Ticks are lazy: the timer is armed for the next tick that does something (a leader's
   * heartbeat, a follower's election timeout), and the ticks in between are counted when it
   * fires or when a message arrives. An idle follower then wakes a few times per election
   * timeout instead of on every tick (each wakeup of an idle process costs CPU).
   */
  private tickTimer: TimerHandle | undefined;
  /** When the timer fires (clock ms), while it is armed. */
  private tickTimerAtMs = 0;
  /** The timer found an election due and waits one turn for unread messages first. */
  private electionDeferred = false;
  /** The clock time up to which ticks were delivered to the core. */
  private ticksDeliveredToMs = 0;
  private started = false;
  private lastReportedState: RaftStateChange | undefined;
  /** When each peer was last heard from (any message), on this node's clock. */
  private readonly heardAtMs = new Map<NodeId, number>();

  /**
   * Builds the node and recovers it from its log store: the newest snapshot is restored into
   * the state machine and only later entries will be replayed. Call {@link start} to run it.
   * @throws InvalidArgumentError on bad options.
   */
  constructor(options: RaftNodeOptions<Result>) {
    this.options = options;
    this.id = options.id;
    this.clock = options.clock;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.tickIntervalMs = options.tickIntervalMs ?? RUNTIME_DEFAULTS.tickIntervalMs;
    this.operationTimeoutMs = options.operationTimeoutMs ?? RUNTIME_DEFAULTS.operationTimeoutMs;
    this.maxPendingProposals = options.maxPendingProposals ?? RUNTIME_DEFAULTS.maxPendingProposals;
    this.maxCommandSizeBytes = options.maxCommandSizeBytes ?? RUNTIME_DEFAULTS.maxCommandSizeBytes;
    this.snapshotPolicy = {
      everyEntries: options.snapshotEveryEntries ?? RUNTIME_DEFAULTS.snapshotEveryEntries,
      logToSnapshotRatio: options.snapshotLogRatio ?? RUNTIME_DEFAULTS.snapshotLogRatio,
      minLogBytes: options.snapshotMinBytes ?? RUNTIME_DEFAULTS.snapshotMinBytes,
      maxLogBytes: options.snapshotEveryBytes ?? RUNTIME_DEFAULTS.snapshotEveryBytes,
    };
    this.snapshotTrailingEntries =
      options.snapshotTrailingEntries ?? RUNTIME_DEFAULTS.snapshotTrailingEntries;
    this.promotionMaxLagEntries =
      options.promotionMaxLagEntries ?? RUNTIME_DEFAULTS.promotionMaxLagEntries;
    this.forwardProposals = options.forwardProposals ?? true;
    this.gate =
      options.protocolGate ??
      new ProtocolGate({ clusterVersion: FORWARDED_PROPOSALS_PROTOCOL_VERSION });
    for (const [name, value] of Object.entries({
      tickIntervalMs: this.tickIntervalMs,
      operationTimeoutMs: this.operationTimeoutMs,
      maxPendingProposals: this.maxPendingProposals,
      maxCommandSizeBytes: this.maxCommandSizeBytes,
      snapshotEveryEntries: this.snapshotPolicy.everyEntries,
      snapshotMinBytes: this.snapshotPolicy.minLogBytes,
      snapshotEveryBytes: this.snapshotPolicy.maxLogBytes,
    })) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new InvalidArgumentError(`runtime option ${name} must be a positive integer`);
      }
    }
    const ratio = this.snapshotPolicy.logToSnapshotRatio;
    if (!Number.isFinite(ratio) || ratio <= 0) {
      throw new InvalidArgumentError("runtime option snapshotLogRatio must be a positive number");
    }

    // Restart recovery: restore the newest snapshot, then let the core replay what follows.
    const snapshot = options.logStore.snapshot();
    this.snapshotIndex = snapshot.metadata.index;
    if (snapshot.metadata.index > 0) options.stateMachine.restore(snapshot.data);
    this.lastSnapshotBytes = snapshot.data.byteLength;
    this.appliedIndex = snapshot.metadata.index;
    this.stableDataThroughIndex = options.logStore.stableDataThroughIndex ?? 0;

    this.raw = new RawNode({
      // Committed entries per Ready, at most: keeps one Ready's apply inside a few turn budgets.
      maxCommittedSizePerReadyBytes: RUNTIME_DEFAULTS.maxCommittedSizePerReadyBytes,
      ...options.raft,
      id: options.id,
      storage: options.logStore,
      random: options.random,
      applied: this.appliedIndex,
      logger: this.logger,
      // Forwarding is the runtime's choice (forwardProposals), made before it reaches the core.
      disableProposalForwarding: false,
    });
    // Drawn after the core's own draws, where the read batcher drew it before forwarding
    // existed: the simulator's recorded seeds keep replaying the same runs.
    this.incarnation = options.random.int(0x7fff_ffff);
    this.reads = new ReadBatcher<StateMachine<Result>>({
      nodeId: this.id,
      incarnation: this.incarnation,
      clock: this.clock,
      retryAfterMs: this.tickIntervalMs * (options.raft?.electionTicks ?? 10) * 2,
      requestReadIndex: (context) => {
        this.raw.readIndex(context);
        this.scheduleProcessing();
      },
    });
  }

  /** Starts ticking and listening to peers. */
  start(): void {
    invariant(!this.started && !this.stopped, "node already started or stopped");
    this.started = true;
    this.options.transport.listen({
      onMessages: (messages) => this.receive(messages),
      onUnreachable: (peer) => {
        if (this.stopped) return;
        this.raw.reportUnreachable(peer);
        this.scheduleProcessing();
      },
      onSnapshotStatus: (peer, outcome) => {
        if (this.stopped) return;
        this.guard(() => this.raw.reportSnapshot(peer, outcome));
        this.scheduleProcessing();
      },
    });
    this.notifyConfChange(undefined, this.raw.confState());
    this.ticksDeliveredToMs = this.clock.now();
    this.armTickTimer();
    this.scheduleProcessing();
  }

  private notifyConfChange(change: ConfChange | undefined, confState: ConfState): void {
    try {
      this.options.onConfChange?.(change, confState);
    } catch (error) {
      this.logger.warn("onConfChange failed", { error: asError(error).message });
    }
  }

  /**
   * Arms the tick timer for the next tick that does something. An armed timer for another time
   * is moved: a later one would miss that tick, and an earlier one would only wake the process
   * to find nothing due. The latter is an idle follower's case at every heartbeat (which pushes
   * its election timeout back): moving the timer then costs far less than the wake-up it saves,
   * and it moves at most once per tick, as the due time is counted in whole ticks.
   */
  private armTickTimer(): void {
    if (this.stopped) return;
    const dueAtMs = this.ticksDeliveredToMs + this.raw.ticksUntilDue() * this.tickIntervalMs;
    if (this.tickTimer !== undefined) {
      if (this.tickTimerAtMs === dueAtMs) return;
      this.tickTimer.cancel();
      // Nothing is due before the new time: an election put off for unread messages no longer is.
      if (this.tickTimerAtMs < dueAtMs) this.electionDeferred = false;
    }
    this.tickTimerAtMs = dueAtMs;
    this.tickTimer = this.clock.setTimer(Math.max(0, dueAtMs - this.clock.now()), () =>
      this.onTickTimer(),
    );
  }

  private onTickTimer(): void {
    this.tickTimer = undefined;
    if (this.stopped) return;
    const clockMs = this.clock.now();
    const earlyMs = this.tickTimerAtMs - clockMs;
    const nowMs =
      earlyMs > 0 && earlyMs <= TICK_TIMER_EARLY_TOLERANCE_MS ? this.tickTimerAtMs : clockMs;
    if (
      !this.electionDeferred &&
      !this.isLeader &&
      this.elapsedTicks(nowMs) >= this.raw.ticksUntilDue()
    ) {
      // An election is due. Timers run before the event loop reads its sockets: if this process
      // was stalled (a long turn, a pause), its leader's messages may be waiting unread. Read
      // them first (a timer of 0 runs after this turn's I/O), so that a stall of this node is
      // not taken for the leader's silence.
      this.electionDeferred = true;
      this.tickTimerAtMs = nowMs;
      this.tickTimer = this.clock.setTimer(0, () => this.onTickTimer());
      return;
    }
    this.electionDeferred = false;
    this.deliverTicks(true, nowMs);
    this.armTickTimer();
    this.scheduleProcessing();
  }

  /** Whole ticks from the last delivery to `nowMs`. */
  private elapsedTicks(nowMs: number = this.clock.now()): number {
    return Math.floor((nowMs - this.ticksDeliveredToMs) / this.tickIntervalMs);
  }

  /**
   * Hands the core the ticks that elapsed since the last delivery, up to the one that acts
   * (`includingDue`: the timer) or short of it (a message is about to be stepped; the timer
   * delivers that one). Ticks beyond are dropped, as a late timer used to drop them: a stalled
   * process does not run several elections' worth of time at once, and time before a message
   * that resets the election timeout does not count after it.
   */
  private deliverTicks(includingDue: boolean, nowMs?: number): void {
    const elapsed = this.elapsedTicks(nowMs);
    if (elapsed <= 0) return;
    const due = this.raw.ticksUntilDue();
    const ticks = Math.min(elapsed, includingDue ? due : due - 1);
    // The acting tick stays pending on the message path, so the timer still finds it.
    const consumed = includingDue || elapsed < due ? elapsed : elapsed - 1;
    this.ticksDeliveredToMs += consumed * this.tickIntervalMs;
    if (ticks <= 0) return;
    this.guard(() => {
      for (let i = 0; i < ticks; i++) this.raw.tick();
    });
  }

  private receive(messages: readonly Message[]): void {
    if (this.stopped) return;
    const nowMs = this.clock.now();
    let from = NONE;
    for (const m of messages) {
      if (m.from === from) continue;
      from = m.from;
      this.heardAtMs.set(from, nowMs);
    }
    this.deliverTicks(false, nowMs);
    this.guard(() => {
      for (const m of messages) {
        if (m.type === MessageType.Prop && this.refusesForwarded(m)) continue;
        this.raw.step(m);
      }
    });
    this.armTickTimer();
    this.scheduleProcessing();
  }

  /**
   * True for a forwarded proposal this node must not append: the cluster's protocol gate is
   * closed, so a member may not read the envelope (protocol-gate.ts). Dropped as etcd drops a
   * proposal it cannot take; the follower's caller times out, its outcome unknown.
   */
  private refusesForwarded(m: Message): boolean {
    if (this.gate.forwarding) return false;
    if (!m.entries.some((e) => isForwardedProposal(e.data))) return false;
    if (this.gate.acceptsForwarded(this.raw.inspect().commit)) return false;
    this.forwardedProposalsRefused++;
    this.logger.warn("dropping a forwarded proposal: not every member speaks its protocol yet", {
      from: m.from,
      clusterProtocolVersion: this.gate.clusterVersion,
    });
    return true;
  }

  /** Runs `fn` against the core; an exception there is a bug or corruption: stop loudly. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The Ready loop

  private scheduleProcessing(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    queueMicrotask(() => {
      // What processLoop would do when nothing is ready (an idle leader's turn that only read a
      // heartbeat response), without an async call and its promise.
      if (!this.stopped && !this.readyOrFailing()) {
        this.processing = false;
        this.armTickTimer();
        return;
      }
      // Never rejects: processLoop hands any failure to fail(), which stops the node.
      void this.processLoop();
    });
  }

  /** True if the core has a Ready, or if asking threw (processLoop then fails the node). */
  private readyOrFailing(): boolean {
    try {
      return this.raw.hasReady();
    } catch {
      return true;
    }
  }

  private async processLoop(): Promise<void> {
    const turnStartMs = this.clock.now();
    let yielded = false;
    try {
      while (!this.stopped && this.raw.hasReady()) {
        // Awaited only when the Ready has something to persist: an idle node's Readies (a
        // heartbeat, its response) need no promise and no extra microtask.
        const saving = this.handleReady(this.raw.ready());
        if (saving !== undefined) await saving;
        // A turn budget: after this long, let timers (ticks: heartbeats, elections) and
        // incoming messages run before the next Ready, so applying a backlog never starves them.
        if (this.clock.now() - turnStartMs >= READY_TURN_BUDGET_MS && this.raw.hasReady()) {
          yielded = true;
          break;
        }
      }
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    } finally {
      if (!yielded) this.processing = false;
    }
    if (yielded) {
      this.turnsYielded++;
      this.clock.setTimer(0, () => {
        this.processing = false;
        this.scheduleProcessing();
      });
      return;
    }
    if (!this.stopped && this.raw.hasReady()) this.scheduleProcessing();
    // A turn can change what is due (a new leader heartbeats; a new term draws a new timeout).
    this.armTickTimer();
  }

  /** Handles `rd`; returns the promise of its durable save when it has one to wait for. */
  private handleReady(rd: Ready): Promise<void> | undefined {
    const transport = this.options.transport;
    // A leader's appends and heartbeats go out while its own write is in flight; votes and
    // acknowledgements wait until what they promise is durable.
    const later: Message[] = [];
    if (rd.messages.length > 0) {
      const early: Message[] = [];
      for (const m of rd.messages) (canSendBeforePersist(m) ? early : later).push(m);
      if (early.length > 0) {
        transport.send(early);
        // The follower's progress stays paused until the transport reports how the snapshot
        // ended (onSnapshotStatus → reportSnapshot, etcd's ReportSnapshot): one in flight each.
        for (const m of early) {
          if (m.type !== MessageType.Snap) continue;
          this.snapshotsSent++;
          // A peer added after the newest snapshot refuses it (it is not in its configuration):
          // take a fresh one, which includes the peer, instead of waiting for the next cadence.
          if (m.snapshot !== undefined && !inConfState(m.snapshot.metadata.confState, m.to)) {
            this.snapshotWanted = true;
          }
        }
      }
    }
    if (!this.gate.forwarding) for (const e of rd.entries) this.gate.onStored(e.index, e.data);
    if (rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined) {
      return this.options.logStore
        .save(
          {
            entries: rd.entries,
            ...(rd.hardState === undefined ? {} : { hardState: rd.hardState }),
            ...(rd.snapshot === undefined ? {} : { snapshot: rd.snapshot }),
          },
          { sync: rd.mustSync || rd.snapshot !== undefined },
        )
        .then(() => this.finishReady(rd, later));
    }
    this.finishReady(rd, later);
    return undefined;
  }

  /** What follows a Ready's durable save: the later messages, the apply, `advance`. */
  private finishReady(rd: Ready, later: readonly Message[]): void {
    if (this.stopped) return;
    const transport = this.options.transport;
    if (later.length > 0) transport.send(later);

    if (rd.snapshot !== undefined) {
      this.options.stateMachine.restore(rd.snapshot.data);
      this.appliedIndex = rd.snapshot.metadata.index;
      this.snapshotIndex = rd.snapshot.metadata.index;
      this.lastSnapshotBytes = rd.snapshot.data.byteLength;
      this.bytesSinceSnapshot = 0;
      this.logger.info("installed snapshot from leader", { index: this.appliedIndex });
      this.notifyConfChange(undefined, this.raw.confState());
    }
    for (const entry of rd.committedEntries) this.applyEntry(entry);
    for (const rs of rd.readStates) this.reads.onReadState(rs);
    this.raw.advance();

    if (rd.softState !== undefined) this.onSoftState();
    if (rd.softState !== undefined || rd.hardState !== undefined) this.reportRaftState();
    this.reads.serve(this.appliedIndex, this.options.stateMachine);
    this.maybeStartSnapshot();
  }

  private applyEntry(entry: Entry): void {
    invariant(
      entry.index === this.appliedIndex + 1,
      () => `applying index ${entry.index} after ${this.appliedIndex}`,
    );
    let result: Result | ConfState | undefined;
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      const before = this.raw.confState();
      result = this.raw.applyConfChange(change);
      this.logger.info("configuration changed", { index: entry.index, config: result });
      // A new member must start from a snapshot: the bootstrap configuration is in the index-0
      // snapshot, not in the log, so it cannot rebuild the configuration from entry 1 on. Take a
      // snapshot now; maybeStartSnapshot then compacts entry 1 away, so the leader sends it one.
      if (
        change.changes.some(
          (c) => c.type !== ConfChangeType.RemoveNode && !inConfState(before, c.nodeId),
        )
      ) {
        this.snapshotWanted = true;
      }
      this.notifyConfChange(change, result);
    } else if (entry.data.length > 0) {
      const readsEnvelopes = this.gate.readsEnvelopes;
      const protocolVersion = readsEnvelopes ? protocolEntryVersion(entry.data) : undefined;
      if (isForwardedProposal(entry.data)) {
        this.forwardedEntriesApplied++;
        if (this.firstForwardedIndex === 0) this.firstForwardedIndex = entry.index;
      }
      if (protocolVersion !== undefined) {
        this.gate.onApplied(protocolVersion, entry.index);
      } else {
        result = this.options.stateMachine.apply({
          index: entry.index,
          term: entry.term,
          // A write a follower forwarded arrives in the envelope: the state machine sees the
          // command. (A node standing in for the previous release hands it over as it is.)
          data: readsEnvelopes ? commandOf(entry.data) : entry.data,
          // Replayed from the log on disk: its data never changes and is kept anyway.
          stableData: entry.index <= this.stableDataThroughIndex,
        });
      }
    }
    this.appliedIndex = entry.index;
    this.bytesSinceSnapshot += entry.data.byteLength;
    // Committed, so it took effect whoever proposed it: answer our own caller, if it waits.
    if (
      isForwardedProposal(entry.data) &&
      this.gate.readsEnvelopes &&
      forwardedBy(entry.data, this.id, this.incarnation)
    ) {
      this.forwarded.get(forwardedSequence(entry.data))?.resolve(result);
    }

    const pending = this.pending.get(entry.index);
    if (pending === undefined) return;
    if (pending.term === entry.term) {
      pending.operation.resolve(result);
    } else {
      // Another leader's entry took this index: ours was never committed (log matching), so
      // retrying cannot apply the command twice.
      pending.operation.reject(
        new UnavailableError("the proposal was lost in a leader change and not applied; retry"),
      );
    }
  }

  private reportRaftState(): void {
    const report = this.options.onRaftStateChange;
    if (report === undefined) return;
    const core = this.raw.inspect();
    const last = this.lastReportedState;
    if (last?.role === core.role && last.term === core.term && last.leader === core.leader) return;
    this.lastReportedState = { role: core.role, term: core.term, leader: core.leader };
    try {
      report(this.lastReportedState);
    } catch (error) {
      this.logger.warn("onRaftStateChange failed", { error: asError(error).message });
    }
  }

  private onSoftState(): void {
    const leader = this.raw.leader;
    for (const [operation, transferee] of this.transfers) {
      if (leader === transferee) operation.resolve();
    }
  }

  /**
   * Starts a snapshot if one is due and none is in flight. The state is captured now, at
   * `appliedIndex`: a state machine with `captureSnapshot` is then encoded a slice at a time
   * between turns of the event loop (applies, ticks and messages go on meanwhile), one without
   * it is serialized now. Writing the file and compacting the log run in the background; the
   * Ready loop keeps sending heartbeats, voting and applying throughout.
   */
  private maybeStartSnapshot(): void {
    if (this.snapshotTask !== undefined || this.stopped) return;
    if (this.appliedIndex <= this.snapshotIndex) return;
    if (
      !this.snapshotWanted &&
      !snapshotDue(this.snapshotPolicy, {
        entries: this.appliedIndex - this.snapshotIndex,
        logBytes: this.bytesSinceSnapshot,
        lastSnapshotBytes: this.lastSnapshotBytes,
      })
    ) {
      return;
    }
    if (this.clock.now() < this.snapshotNotBeforeMs) return;
    const index = this.appliedIndex;
    const confState = this.raw.confState();
    const wanted = this.snapshotWanted;
    const bytesCovered = this.bytesSinceSnapshot;
    this.snapshotWanted = false;
    const encoding = this.options.stateMachine.captureSnapshot?.();
    const logStore = this.options.logStore;
    let written: Promise<void>;
    if (encoding === undefined) {
      const data = this.options.stateMachine.snapshot();
      written = this.recordSnapshot(index, data.byteLength, bytesCovered, () =>
        logStore.saveSnapshot(index, confState, data),
      );
    } else {
      const runner = new SlicedSnapshotRunner(this.clock, encoding);
      this.snapshotRunner = runner;
      // Streamed to the store when it can take pieces: the whole snapshot is never held.
      const open =
        logStore.beginSnapshot === undefined
          ? undefined
          : (sizeBytes: number) => logStore.beginSnapshot!(index, confState, sizeBytes);
      // A snapshot from the leader installed meanwhile is at least as new: it wins.
      written = runner
        .run(() => !this.stopped && index > this.snapshotIndex, open)
        .then((outcome) => {
          switch (outcome.kind) {
            case "complete":
              return this.recordSnapshot(index, outcome.data.byteLength, bytesCovered, () =>
                logStore.saveSnapshot(index, confState, outcome.data),
              );
            case "streamed":
              return this.recordSnapshot(index, outcome.sizeBytes, bytesCovered, () =>
                outcome.writer.commit(),
              );
            case "abandoned":
              this.snapshotWanted ||= wanted && !this.stopped;
              return undefined;
          }
        });
    }
    this.snapshotTask = written
      .catch((error: unknown) => {
        if (error instanceof StorageFullError) {
          // Not fatal: the log still holds everything; try again once space may be back.
          this.snapshotNotBeforeMs = this.clock.now() + SNAPSHOT_RETRY_AFTER_FULL_MS;
          this.snapshotWanted ||= wanted;
          this.logger.warn("snapshot skipped: the disk is full", { index, error: error.message });
          return;
        }
        // A snapshot from the leader was installed before the stream could start: it is newer.
        if (error instanceof SnapshotOutOfDateError) return;
        if (this.stopped) return;
        this.fail(asError(error));
      })
      .finally(() => {
        this.snapshotTask = undefined;
        this.snapshotRunner = undefined;
        this.scheduleProcessing();
      });
  }

  /**
   * Makes the snapshot of `index` (`sizeBytes` long) durable with `persist`, then counts it and
   * compacts the log behind it.
   */
  private async recordSnapshot(
    index: number,
    sizeBytes: number,
    bytesCovered: number,
    persist: () => Promise<unknown>,
  ): Promise<void> {
    try {
      await persist();
    } catch (error) {
      // A snapshot from the leader, installed while this one was written, is newer: keep it.
      if (error instanceof SnapshotOutOfDateError) return;
      throw error;
    }
    if (this.stopped || index <= this.snapshotIndex) return;
    this.bytesSinceSnapshot = Math.max(0, this.bytesSinceSnapshot - bytesCovered);
    this.snapshotIndex = index;
    this.snapshotsTaken++;
    this.snapshotBytesWritten += sizeBytes;
    this.lastSnapshotBytes = sizeBytes;
    // Entry 1 always goes (see applyEntry): a node with an empty log then gets a snapshot.
    const compactTo = Math.max(index - this.snapshotTrailingEntries, Math.min(index, 2));
    if (compactTo > this.options.logStore.firstIndex()) {
      await this.options.logStore.compact(compactTo);
    }
    this.logger.info("took snapshot", { index, compactedTo: compactTo, sizeBytes });
  }

  // ---------------------------------------------------------------------------------------------
  // Operations

  private checkUsable(): void {
    if (this.fatal !== undefined) {
      throw new UnavailableError(`node stopped on a fatal error: ${this.fatal.message}`);
    }
    if (this.stopped) throw new UnavailableError("node is stopped");
  }

  /**
   * Refuses new writes while this node's disk is full: its own log cannot take them, and the
   * Ready loop waits for that write (it acknowledges, votes and sends nothing meanwhile, so
   * the followers elect a leader that can write).
   */
  private checkStorageWritable(): void {
    const full = this.options.logStore.storageFull?.();
    if (full !== undefined) throw new StorageFullError(`node ${this.id}: ${full.message}`);
  }

  private notLeader(): NotLeaderError {
    const leader = this.raw.leader;
    return leader === NONE ? new NotLeaderError() : new NotLeaderError({ id: leader });
  }

  private newOperation<T>(
    what: string,
    options: OperationOptions,
    onSettle: () => void,
  ): Operation<T> {
    return new Operation<T>({
      clock: this.clock,
      timeoutMs: options.timeoutMs ?? this.operationTimeoutMs,
      signal: options.signal,
      what,
      onSettle,
    });
  }

  /**
   * Proposes a command; resolves with the state machine's result once it is applied here.
   * Proposals made in the same turn of the event loop go to the core as one batch; on a
   * follower they are forwarded to the leader (unless `forwardProposals` is off).
   * @throws NotLeaderError (no leader known; or with the leader's id when forwarding is off),
   *   TooLargeError, OverloadedError,
   *   UnavailableError (stopping, transfer in progress, lost in a leader change),
   *   StorageFullError (this leader's disk is full: nothing was proposed),
   *   TimeoutError, CancelledError.
   */
  propose(command: Uint8Array, options: ProposeOptions = {}): Promise<Result> {
    const leaderOnly = options.leaderOnly === true;
    try {
      this.checkUsable();
      if (command.byteLength === 0) {
        throw new InvalidArgumentError("a command must not be empty");
      }
      if (command.byteLength > this.maxCommandSizeBytes) {
        throw new TooLargeError(
          `command of ${command.byteLength} bytes exceeds the limit of ${this.maxCommandSizeBytes} bytes`,
        );
      }
      if (
        this.raw.role !== Role.Leader &&
        (leaderOnly || !this.forwards() || this.raw.leader === NONE)
      ) {
        throw this.notLeader();
      }
      this.checkStorageWritable();
      if (
        this.pending.size + this.forwarded.size + this.queued.length >=
        this.maxPendingProposals
      ) {
        throw new OverloadedError(
          `${this.maxPendingProposals} proposals are already pending; back off and retry`,
        );
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const operation = this.newOperation<Result>("proposal", options, () => undefined);
    this.queued.push({ data: command, operation, leaderOnly });
    this.scheduleFlush();
    return operation.promise;
  }

  /** True when a follower hands proposals to the leader: configured so, and the gate is open. */
  private forwards(): boolean {
    return this.forwardProposals && this.gate.forwarding;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Never rejects: flushProposals rejects each proposal's own promise instead of throwing.
    void Promise.resolve().then(() => {
      this.flushScheduled = false;
      this.flushProposals();
    });
  }

  private flushProposals(): void {
    const batch = this.queued.filter((q) => !q.operation.done);
    this.queued = [];
    if (batch.length === 0 || this.stopped) return;
    if (this.raw.role !== Role.Leader && this.forwards() && this.raw.leader !== NONE) {
      // Leadership moved since these were accepted: the leader's own decisions lapse with it.
      const forwardable = batch.filter((q) => !q.leaderOnly);
      if (forwardable.length < batch.length) {
        const error = this.notLeader();
        for (const q of batch) if (q.leaderOnly) q.operation.reject(error);
      }
      if (forwardable.length > 0) this.forwardToLeader(forwardable);
      return;
    }
    let placed: { term: number; index: number } | undefined;
    try {
      if (this.raw.role !== Role.Leader) throw this.notLeader();
      placed = this.raw.propose(...batch.map((q) => q.data));
    } catch (error) {
      for (const q of batch) q.operation.reject(asError(error));
      return;
    }
    invariant(placed !== undefined, "a leader's proposal must get an index");
    const first = placed.index - batch.length + 1;
    batch.forEach((q, i) => this.track(first + i, placed.term, q.operation as Operation<unknown>));
    this.scheduleProcessing();
  }

  /**
   * Hands `batch` to the leader in envelopes, in messages of at most FORWARD_BATCH_BYTES, and
   * waits for their entries in this node's own apply.
   */
  private forwardToLeader(batch: readonly QueuedProposal<Result>[]): void {
    let start = 0;
    while (start < batch.length) {
      let end = start;
      let bytes = 0;
      while (end < batch.length && (end === start || bytes < FORWARD_BATCH_BYTES)) {
        bytes += (batch[end] as QueuedProposal<Result>).data.byteLength;
        end++;
      }
      const envelopes: Uint8Array[] = [];
      const sequences: number[] = [];
      for (let i = start; i < end; i++) {
        const sequence = this.nextForwardSequence;
        this.nextForwardSequence = (this.nextForwardSequence + 1) >>> 0 || 1;
        sequences.push(sequence);
        envelopes.push(
          encodeForwardedProposal(
            this.id,
            this.incarnation,
            sequence,
            (batch[i] as QueuedProposal<Result>).data,
          ),
        );
      }
      try {
        this.raw.propose(...envelopes);
      } catch (error) {
        for (let i = start; i < batch.length; i++) {
          (batch[i] as QueuedProposal<Result>).operation.reject(asError(error));
        }
        return;
      }
      for (let i = start; i < end; i++) {
        const operation = (batch[i] as QueuedProposal<Result>).operation as Operation<unknown>;
        const sequence = sequences[i - start] as number;
        this.forwarded.set(sequence, operation);
        operation.whenSettled(() => {
          if (this.forwarded.get(sequence) === operation) this.forwarded.delete(sequence);
        });
      }
      this.proposalsForwarded += end - start;
      start = end;
    }
    this.scheduleProcessing();
  }

  private track(index: number, term: number, operation: Operation<unknown>): void {
    this.pending.set(index, { term, operation });
    operation.whenSettled(() => {
      if (this.pending.get(index)?.operation === operation) this.pending.delete(index);
    });
  }

  /**
   * Runs `query` against the state machine once it reflects every write acknowledged before
   * this call (linearizable, through ReadIndex; with `raft.readOnlyOption: "lease-based"` the
   * leader answers from its lease). Concurrent reads share one confirmation round. Works on
   * followers too: they ask the leader for the read index.
   * @throws NotLeaderError when no leader is known, TimeoutError, CancelledError, UnavailableError.
   */
  read<T>(
    query: (stateMachine: StateMachine<Result>) => T,
    options: OperationOptions = {},
  ): Promise<T> {
    try {
      this.checkUsable();
      if (this.raw.leader === NONE) throw new NotLeaderError();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const operation = this.newOperation<T>("read", options, () => undefined);
    this.reads.enqueue(query, operation);
    return operation.promise;
  }

  /** Runs `query` on the local state as it is: fast, possibly stale. */
  readStale<T>(query: (stateMachine: StateMachine<Result>) => T): T {
    this.checkUsable();
    return query(this.options.stateMachine);
  }

  /**
   * Adds `nodeId` as a learner (it receives the log but does not vote); resolves with the new
   * configuration once applied. `context` travels with the change (e.g. the member's addresses).
   */
  addLearner(
    nodeId: NodeId,
    context: Uint8Array = new Uint8Array(0),
    options: OperationOptions = {},
  ): Promise<ConfState> {
    return this.changeMembership(
      {
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.AddLearnerNode, nodeId }],
        context,
      },
      options,
    );
  }

  /**
   * Promotes a learner to voter once it has caught up (within `promotionMaxLagEntries` of the
   * leader's log); resolves with the new configuration once applied.
   * @throws UnavailableError if the learner is still behind: retry when it has caught up.
   * @throws NotFoundError-like InvalidArgumentError if `nodeId` is not a learner.
   */
  promote(nodeId: NodeId, options: OperationOptions = {}): Promise<ConfState> {
    const behind = this.promotionRefusal(nodeId);
    if (behind !== undefined) return Promise.reject(behind);
    return this.changeMembership(
      {
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.AddNode, nodeId }],
        context: new Uint8Array(0),
      },
      options,
    );
  }

  /**
   * Promotes learner `promoteId` and removes member `removeId` in one change, through a joint
   * configuration (Raft thesis §4.3) that the leader leaves on its own once it is committed.
   * Resolves with the joint configuration once applied; `status().joint` is true until the
   * leave is applied. The learner must have caught up, as for {@link promote}.
   */
  replaceVoter(
    removeId: NodeId,
    promoteId: NodeId,
    options: OperationOptions = {},
  ): Promise<ConfState> {
    if (removeId === promoteId) {
      return Promise.reject(new InvalidArgumentError("a node cannot replace itself"));
    }
    const behind = this.promotionRefusal(promoteId);
    if (behind !== undefined) return Promise.reject(behind);
    return this.changeMembership(
      {
        // Two changes with Auto: joint consensus with an automatic leave.
        transition: ConfChangeTransition.Auto,
        changes: [
          { type: ConfChangeType.AddNode, nodeId: promoteId },
          { type: ConfChangeType.RemoveNode, nodeId: removeId },
        ],
        context: new Uint8Array(0),
      },
      options,
    );
  }

  /** Why `nodeId` cannot be promoted now (on a leader), or undefined. */
  private promotionRefusal(nodeId: NodeId): Error | undefined {
    const status = this.raw.status();
    if (status.role !== Role.Leader) return undefined;
    const progress = status.progress.get(nodeId);
    if (progress === undefined || !progress.isLearner) {
      return new InvalidArgumentError(`node ${nodeId} is not a learner`);
    }
    const lag = status.lastIndex - progress.match;
    if (lag > this.promotionMaxLagEntries) {
      return new UnavailableError(
        `learner ${nodeId} is ${lag} entries behind the leader; retry when it has caught up`,
      );
    }
    return undefined;
  }

  /** Removes a member (voter or learner); resolves with the new configuration once applied. */
  removeMember(nodeId: NodeId, options: OperationOptions = {}): Promise<ConfState> {
    return this.changeMembership(
      {
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.RemoveNode, nodeId }],
        context: new Uint8Array(0),
      },
      options,
    );
  }

  /**
   * Proposes any membership change (several changes at once use joint consensus); resolves
   * with the new configuration once applied here.
   * @throws ConflictError if another change is pending; NotLeaderError; TimeoutError.
   */
  changeMembership(change: ConfChange, options: OperationOptions = {}): Promise<ConfState> {
    try {
      this.checkUsable();
      if (this.raw.role !== Role.Leader) throw this.notLeader();
      this.checkStorageWritable();
      const placed = this.raw.proposeConfChange(change);
      invariant(placed !== undefined, "a leader's proposal must get an index");
      const operation = this.newOperation<ConfState>("membership change", options, () => undefined);
      this.track(placed.index, placed.term, operation as Operation<unknown>);
      this.scheduleProcessing();
      return operation.promise;
    } catch (error) {
      return Promise.reject(asError(error));
    }
  }

  /**
   * Hands leadership to `transferee` (a voter); resolves when this node sees it lead.
   * @throws NotLeaderError on a follower; TimeoutError if the transfer did not finish.
   */
  transferLeadership(transferee: NodeId, options: OperationOptions = {}): Promise<void> {
    try {
      this.checkUsable();
      if (this.raw.role !== Role.Leader) throw this.notLeader();
      if (this.raw.leader === transferee) return Promise.resolve();
      this.raw.transferLeader(transferee);
    } catch (error) {
      return Promise.reject(asError(error));
    }
    const operation = this.newOperation<void>("leadership transfer", options, () => {
      this.transfers.delete(operation);
    });
    this.transfers.set(operation, transferee);
    this.scheduleProcessing();
    return operation.promise;
  }

  /** Starts an election at once (operators and tests). */
  campaign(): void {
    this.checkUsable();
    this.raw.campaign();
    this.scheduleProcessing();
  }

  /** The core's status plus the runtime's counters. */
  status(): RaftNodeStatus {
    return {
      ...this.raw.status(),
      applied: this.appliedIndex,
      pendingProposals: this.pending.size + this.forwarded.size + this.queued.length,
      snapshotIndex: this.snapshotIndex,
      snapshotsTaken: this.snapshotsTaken,
      snapshotBytesWritten: this.snapshotBytesWritten,
      snapshotsSent: this.snapshotsSent,
      proposalsForwarded: this.proposalsForwarded,
      protocolVersion: this.gate.nodeVersion,
      clusterProtocolVersion: this.gate.clusterVersion,
      forwardedEntriesApplied: this.forwardedEntriesApplied,
      firstForwardedIndex: this.firstForwardedIndex,
      forwardedProposalsRefused: this.forwardedProposalsRefused,
      readyTurnsYielded: this.turnsYielded,
      stopped: this.stopped,
    };
  }

  /**
   * When a message from `peer` last arrived (this node's clock), or undefined if none has since
   * this node started or `peer` is not in the configuration. What the leader's worker liveness
   * monitor judges workers by: a removed member whose process runs on keeps sending pre-votes,
   * and must not count as alive for that (its worker goes offline and its work moves).
   */
  lastHeardFromMs(peer: NodeId): number | undefined {
    if (!inConfState(this.raw.confState(), peer)) return undefined;
    return this.heardAtMs.get(peer);
  }

  /** True if this node is the leader. */
  get isLeader(): boolean {
    return this.raw.role === Role.Leader;
  }

  /** The cluster's protocol version as far as this node applied the log (see protocol-gate.ts). */
  get clusterProtocolVersion(): number {
    return this.gate.clusterVersion;
  }

  /** The leader this node knows of, or NONE. */
  get leader(): NodeId {
    return this.raw.leader;
  }

  /**
   * A read-only, live view of the consensus core (see {@link RawNode.inspect}), cheap enough to
   * read after every event, unlike {@link status}, which copies every peer's progress. Undefined
   * once the node stopped. For the simulator's checkers and diagnostics: nothing it shows may
   * be acted on as if it were current once the caller awaits.
   */
  inspect(): RaftInspection | undefined {
    return this.stopped ? undefined : this.raw.inspect();
  }

  /**
   * Stops the node: no more ticks or messages; every pending operation rejects with
   * UNAVAILABLE. Closes the transport and the log store once in-flight work has finished.
   * After a fatal error it resolves once that error's own closing has finished.
   */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.tickTimer?.cancel();
      this.snapshotRunner?.abandon();
      this.rejectAll(new UnavailableError("node is stopping; retry on another node"));
    }
    return this.closeResources();
  }

  /**
   * Closes the transport, waits for the Ready loop to leave, then closes the log store; once,
   * whoever asks (stop, or a fatal error). A failure to close is logged: the process is
   * going away and must not hang on it.
   */
  private closeResources(): Promise<void> {
    this.closing ??= (async () => {
      await this.options.transport
        .close()
        .catch((error: unknown) =>
          this.logger.warn("closing the transport failed", { error: asError(error).message }),
        );
      while (this.processing) await new Promise<void>((resolve) => this.clock.setTimer(1, resolve));
      await this.snapshotTask;
      await this.options.logStore
        .close()
        .catch((error: unknown) =>
          this.logger.warn("closing the log store failed", { error: asError(error).message }),
        );
    })();
    return this.closing;
  }

  private rejectAll(error: Error): void {
    for (const q of this.queued) q.operation.reject(error);
    this.queued = [];
    for (const p of [...this.pending.values()]) p.operation.reject(error);
    this.pending.clear();
    for (const operation of [...this.forwarded.values()]) operation.reject(error);
    this.forwarded.clear();
    this.reads.rejectAll(error);
    for (const operation of [...this.transfers.keys()]) operation.reject(error);
  }

  private fail(error: Error): void {
    if (this.fatal !== undefined) return;
    this.fatal = error;
    this.logger.warn("node stopped on a fatal error", {
      error: error.message,
      code: isBlixardError(error) ? error.code : "INTERNAL",
    });
    this.stopped = true;
    this.tickTimer?.cancel();
    this.snapshotRunner?.abandon();
    this.rejectAll(error);
    // Release the WAL and the transport at once: a stopped node that kept them open would keep
    // its process alive, and a supervisor would never restart it.
    void this.closeResources();
    this.options.onFatal?.(error);
  }
}

function inConfState(confState: ConfState, id: NodeId): boolean {
  return (
    confState.voters.includes(id) ||
    confState.learners.includes(id) ||
    confState.votersOutgoing.includes(id)
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
