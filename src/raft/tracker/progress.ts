/**
 * The leader's flow control towards one follower: where its log is known to match, what to send
 * next, and whether to send at all right now.
 */
import { invariant } from "../../common/assert.js";
import { Inflights } from "./inflights.js";

/** How the leader talks to a follower. */
export const ProgressState = {
  /**
   * The follower's log position is unknown: send one append at a time (a probe) and wait for
   * its answer before the next.
   */
  Probe: "probe",
  /** The follower keeps up: stream appends optimistically, bounded by the inflight window. */
  Replicate: "replicate",
  /** The follower needs a snapshot; appends stop until it has one. */
  Snapshot: "snapshot",
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** How to build a {@link Progress}. */
export interface ProgressOptions {
  /** The index of the next entry to send; at least `match + 1`. */
  readonly next: number;
  /** The index up to which the follower's log is known to match the leader's. Default 0. */
  readonly match?: number;
  /** The most append messages in flight (the inflight window's capacity). */
  readonly maxInflightMessages: number;
  /** The most payload bytes in flight; 0 = no byte limit. */
  readonly maxInflightBytes: number;
  /** True if the follower is a learner (replicated to, never counted). Default false. */
  readonly isLearner?: boolean;
  /** True if the follower is considered active for check-quorum. Default false. */
  readonly recentActive?: boolean;
}

/**
 * The leader's view of one follower (etcd tracker.Progress). Fields are public and mutable, as in
 * etcd: raft.ts drives the transitions. Invariants, asserted after every transition: match <
 * next; only Replicate has messages in flight; only Snapshot has a pending snapshot. The state
 * machine: Probe → Replicate, Probe or Replicate → Snapshot, any state → Probe.
 */
export class Progress {
  /** The index up to which the follower's log is known to match the leader's. */
  match: number;
  /** The index of the next entry to send; entries in (match, next) are in flight. */
  next: number;
  /** How the leader talks to this follower. */
  state: ProgressState = ProgressState.Probe;
  /** The index of the snapshot in flight, in Snapshot state; 0 otherwise. */
  pendingSnapshot = 0;
  /**
   * A snapshot was handed to the transport and its outcome (SnapStatus) has not come back. It
   * outlives Snapshot state: an append response can move the follower on to Replicate while the
   * snapshot is still crossing, and a second one must not follow it (a snapshot storm).
   */
  snapshotInFlight = false;
  /** Heard from since the last check-quorum round. */
  recentActive: boolean;
  /** In Probe: one probe sent, wait for its answer before the next. */
  msgAppFlowPaused = false;
  /** The append messages in flight, in Replicate state. */
  readonly inflights: Inflights;
  /** True if this follower is a learner. */
  isLearner: boolean;

  /**
   * Starts in Probe state.
   * @throws InvalidArgumentError (from Inflights) if the inflight limits are out of range.
   */
  constructor(options: ProgressOptions) {
    this.match = options.match ?? 0;
    this.next = options.next;
    invariant(
      this.match < this.next,
      () => `progress needs match < next, got ${this.match}/${this.next}`,
    );
    this.inflights = new Inflights(options.maxInflightMessages, options.maxInflightBytes);
    this.isLearner = options.isLearner ?? false;
    this.recentActive = options.recentActive ?? false;
  }

  /**
   * Enters Probe. Coming from Snapshot, the follower presumably has the snapshot now, so probing
   * starts after it: next = max(match+1, pendingSnapshot+1). Otherwise next = match+1.
   */
  becomeProbe(): void {
    const nextAfterSnapshot = this.state === ProgressState.Snapshot ? this.pendingSnapshot + 1 : 0;
    this.resetState(ProgressState.Probe);
    this.next = Math.max(this.match + 1, nextAfterSnapshot);
    this.checkInvariants();
  }

  /**
   * Enters Replicate, streaming from match+1. Only from Probe: an answered probe is what proves
   * the follower's position (a follower leaving Snapshot goes through Probe first).
   * @throws InternalError from any other state (a bug in the caller).
   */
  becomeReplicate(): void {
    invariant(
      this.state === ProgressState.Probe,
      () => `only a probing follower may start replicating (${this})`,
    );
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
    this.checkInvariants();
  }

  /**
   * Enters Snapshot for a snapshot at `snapshotIndex`; appends resume after it. The snapshot
   * must cover what the follower lacks (at least `match`); one is sent at a time.
   * @throws InternalError if already in Snapshot or `snapshotIndex` < match (a bug in the caller).
   */
  becomeSnapshot(snapshotIndex: number): void {
    invariant(
      this.state !== ProgressState.Snapshot,
      () => `a snapshot is already pending for this follower (${this})`,
    );
    invariant(
      snapshotIndex >= this.match && snapshotIndex > 0,
      () => `snapshot ${snapshotIndex} does not cover the follower's match (${this})`,
    );
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
    this.checkInvariants();
  }

  /**
   * Successful append response up to n: raises match (returns true if it rose), next =
   * max(next, n+1), unpauses probe. Returns false for a stale response (n <= match).
   */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) {
      return false;
    }
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    this.checkInvariants();
    return true;
  }

  /**
   * Call after sending an append with `entryCount` entries of `bytes` payload bytes (etcd
   * UpdateOnEntriesSend). Replicate: next += entryCount and the message joins the inflight
   * window; the flow pauses if that filled the window. Probe: a non-empty append is a probe, so
   * the flow pauses until it is answered (an empty one carries only the commit index).
   * Must not be called in Snapshot state (invariant).
   */
  sentEntries(entryCount: number, bytes: number): void {
    switch (this.state) {
      case ProgressState.Replicate:
        if (entryCount > 0) {
          this.next += entryCount;
          this.inflights.add(this.next - 1, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        return;
      case ProgressState.Probe:
        invariant(this.inflights.count === 0, "a probing follower has no messages in flight");
        if (entryCount > 0) {
          this.msgAppFlowPaused = true;
        }
        return;
      case ProgressState.Snapshot:
        invariant(false, () => `sent entries to a follower in snapshot state (${this})`);
    }
  }

  /**
   * Rejected append at index `rejected` with follower hint `matchHint`. Replicate: stale if
   * rejected <= match, else next = match+1. Probe: stale if next-1 != rejected (probes go one
   * at a time, so any other rejection answers an older one), else next =
   * max(min(rejected, matchHint+1), match+1), unpause. Returns false if stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) {
        return false;
      }
      this.next = this.match + 1;
      this.checkInvariants();
      return true;
    }
    if (this.next - 1 !== rejected) {
      return false;
    }
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    this.checkInvariants();
    return true;
  }

  /** Whether sending appends is throttled. Probe: msgAppFlowPaused; Replicate: inflights.full(); Snapshot: true. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  /** An independent copy (its own inflight window), for config changes that must not mutate their input. */
  clone(): Progress {
    // Bypasses the constructor, which would build an inflight window only to replace it. Every
    // field is copied below; a new field must be added here too (the clone test checks).
    const copy = Object.create(Progress.prototype) as Progress;
    copy.match = this.match;
    copy.next = this.next;
    copy.state = this.state;
    copy.pendingSnapshot = this.pendingSnapshot;
    copy.snapshotInFlight = this.snapshotInFlight;
    copy.recentActive = this.recentActive;
    copy.msgAppFlowPaused = this.msgAppFlowPaused;
    copy.isLearner = this.isLearner;
    (copy as { inflights: Inflights }).inflights = this.inflights.clone();
    return copy;
  }

  /** E.g. `replicate match=5 next=9 learner paused inflight=3[full]`, for logs and tests. */
  toString(): string {
    let text = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) {
      text += " learner";
    }
    if (this.isPaused()) {
      text += " paused";
    }
    if (this.pendingSnapshot > 0) {
      text += ` pendingSnap=${this.pendingSnapshot}`;
    }
    if (!this.recentActive) {
      text += " inactive";
    }
    const inflightCount = this.inflights.count;
    if (inflightCount > 0) {
      text += ` inflight=${inflightCount}`;
      if (this.inflights.full()) {
        text += "[full]";
      }
    }
    return text;
  }

  /**
   * The invariants every transition must leave behind. O(1) and allocation-free unless one
   * fails: it runs on every append response.
   */
  private checkInvariants(): void {
    invariant(this.match < this.next, () => `progress needs match < next (${this})`);
    invariant(
      this.state === ProgressState.Replicate || this.inflights.count === 0,
      () => `only a replicating follower has messages in flight (${this})`,
    );
    invariant(
      this.state === ProgressState.Snapshot || this.pendingSnapshot === 0,
      () => `only a follower in snapshot state has a pending snapshot (${this})`,
    );
  }

  /** Moves to `state`, dropping the flow-control state of the old one. */
  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }
}
