/**
 * Raft's safety properties, checked continuously over a simulated cluster (after every event):
 *
 * - **election safety**: at most one leader per term (from each node's status);
 * - **state machine safety**: every replica applies the same command at an index, with the same
 *   result (a digest of each applied entry and of its result, kept by index);
 * - **monotonicity**: a node's commit and applied indexes never go down within one incarnation;
 * - **committed entries never change** (seen through each node's log store): the term of an
 *   entry at or below a node's commit index is the same on every node, forever;
 * - **log matching** (every entry, committed or not): an entry is made once, by the leader of its
 *   term, on top of a fixed log, so the entry at index i with term t follows the same term at
 *   i − 1 on every node, forever. By induction two logs that hold (i, t) agree up to i;
 * - **leader append-only**: while a node leads a term, its log never shrinks and the entry at
 *   the end it had never changes (no truncation, no overwrite);
 * - **leader completeness**: a leader elected after an entry was committed holds that entry.
 *
 * Logs are read through each node's log store (synchronous reads). Each check only looks at
 * what changed since the previous event (entries appended since, the new end of a leader's
 * log), so its cost per event stays bounded; a truncated follower log is re-read from its
 * durable commit index.
 *
 * The first violation of each property is kept; the run stops at the first one.
 */
import type { RaftNode } from "../../node/raft-node.js";
import type { NodeId } from "../../raft/types.js";
import { Role } from "../../raft/types.js";
import type { SimCluster } from "../cluster.js";
import type { AppliedRecord, SimResult } from "../state-machine.js";
import type { Violation } from "./violation.js";

/** The synchronous reads of a node's log store the checks use. */
interface LogView {
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number;
}

/** Entry keys are `index * ENTRY_KEY_TERMS + term` (terms stay far below 2^20 in a run). */
const ENTRY_KEY_TERMS = 1 << 20;

interface CommittedEntry {
  readonly term: number;
  readonly nodeId: NodeId;
  /** The highest term any node had when the commit was first seen. */
  readonly seenAtMaxTerm: number;
}

/** The continuous safety checker. */
export class SafetyChecker {
  readonly violations: Violation[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly applied = new Map<number, AppliedRecord & { readonly nodeId: NodeId }>();
  private readonly lastCommit = new Map<string, number>();
  private readonly lastApplied = new Map<string, number>();
  private readonly committed = new Map<number, CommittedEntry>();
  private readonly recordedUpTo = new Map<string, number>();
  private readonly leaderCheckedUpTo = new Map<string, number>();
  /** (index, term) of every entry seen on any node → the term of the entry before it. */
  private readonly previousTermOf = new Map<number, number>();
  /** Per node incarnation: the end of its log already checked for log matching. */
  private readonly matchedUpTo = new Map<string, { index: number; term: number }>();
  /** Per node incarnation: its term as leader and the end of its log then. */
  private readonly leaderLogEnd = new Map<
    string,
    { term: number; index: number; entryTerm: number }
  >();
  private maxCommitted = 0;
  private maxTerm = 0;

  /**
   * @param now virtual time, for violation reports.
   * @param onLeader told of the first leader seen in each term (for the trace tail).
   */
  constructor(
    private readonly now: () => number,
    private readonly onLeader?: (id: NodeId, term: number) => void,
  ) {}

  /** True once any property is broken. */
  get failed(): boolean {
    return this.violations.length > 0;
  }

  private violate(property: string, message: string): void {
    if (this.violations.some((v) => v.property === property)) return;
    this.violations.push({ property, message, atMs: this.now() });
  }

  /** A replica applied an entry: it must match what every other replica applied there. */
  onApply(nodeId: NodeId, incarnation: number, record: AppliedRecord): void {
    const key = `${nodeId}#${incarnation}`;
    const previous = this.lastApplied.get(key) ?? 0;
    if (record.index <= previous) {
      this.violate(
        "apply-order",
        `node ${nodeId} applied index ${record.index} after ${previous} (incarnation ${incarnation})`,
      );
    }
    this.lastApplied.set(key, record.index);
    const first = this.applied.get(record.index);
    if (first === undefined) {
      this.applied.set(record.index, { ...record, nodeId });
      return;
    }
    if (first.term !== record.term || first.commandDigest !== record.commandDigest) {
      this.violate(
        "state-machine-safety",
        `index ${record.index}: node ${first.nodeId} applied term ${first.term} command ${first.commandDigest}, ` +
          `node ${nodeId} applied term ${record.term} command ${record.commandDigest}`,
      );
    } else if (first.resultDigest !== record.resultDigest) {
      this.violate(
        "state-machine-safety",
        `index ${record.index}: the same command gave different results: node ${first.nodeId} ` +
          `${first.resultDigest}, node ${nodeId} ${record.resultDigest} (replica state diverged)`,
      );
    }
  }

  /**
   * A node's WAL refused to open with StorageCorrupt although no bit was flipped into its disk:
   * the log lost or damaged data it should have recovered.
   */
  onStorageCorrupt(nodeId: NodeId, error: Error): void {
    this.violate(
      "storage-corrupt",
      `node ${nodeId}'s storage is corrupt without any injected bit flip: ${error.message}`,
    );
  }

  /** A node stopped on a fatal error: an invariant failed somewhere. */
  onFatal(nodeId: NodeId, error: Error): void {
    this.violate("fatal", `node ${nodeId} stopped on a fatal error: ${error.message}`);
  }

  /** Checks every running node's state; call after every event. */
  observe(cluster: SimCluster): void {
    const observed = [];
    for (const slot of cluster.slots.values()) {
      const node = slot.node;
      const store = slot.disk.store;
      if (slot.state !== "running" || node === undefined || store === undefined) continue;
      const status = coreState(node);
      if (status === undefined) continue;
      // Every term seen so far, before recording commits: a leader of a higher term was
      // elected after those commits, so it must hold them.
      this.maxTerm = Math.max(this.maxTerm, status.term);
      observed.push({ slot, status, store });
    }
    for (const { slot, status, store } of observed) {
      const key = `${slot.id}#${slot.incarnation}`;

      if (status.role === Role.Leader) {
        const leader = this.leaderOfTerm.get(status.term);
        if (leader === undefined) {
          this.leaderOfTerm.set(status.term, slot.id);
          this.onLeader?.(slot.id, status.term);
        } else if (leader !== slot.id) {
          this.violate(
            "election-safety",
            `nodes ${leader} and ${slot.id} were both leader in term ${status.term}`,
          );
        }
      }

      const previousCommit = this.lastCommit.get(key) ?? 0;
      if (status.commit < previousCommit) {
        this.violate(
          "commit-monotonic",
          `node ${slot.id}'s commit index went from ${previousCommit} down to ${status.commit}`,
        );
      }
      this.lastCommit.set(key, status.commit);

      // Record (and compare) the terms of the entries this node knows committed.
      // Bounded by the commit index saved with the entries: the store view then holds them.
      const upTo = Math.min(store.initialState().hardState.commit, store.lastIndex());
      const from = Math.max(this.recordedUpTo.get(key) ?? 0, store.firstIndex() - 1);
      for (let index = from + 1; index <= upTo; index++) {
        const term = store.term(index);
        const known = this.committed.get(index);
        if (known === undefined) {
          this.committed.set(index, { term, nodeId: slot.id, seenAtMaxTerm: this.maxTerm });
          this.maxCommitted = Math.max(this.maxCommitted, index);
        } else if (known.term !== term) {
          this.violate(
            "log-matching",
            `committed entry ${index}: node ${known.nodeId} has term ${known.term}, node ${slot.id} has term ${term}`,
          );
        }
      }
      if (upTo > (this.recordedUpTo.get(key) ?? 0)) this.recordedUpTo.set(key, upTo);

      this.checkLogMatching(slot.id, key, store);
      if (status.role === Role.Leader) this.checkLeaderAppendOnly(slot.id, key, status.term, store);
      else this.leaderLogEnd.delete(key);

      if (status.role === Role.Leader) this.checkLeaderCompleteness(slot.id, status.term, store);
    }
  }

  /** Checks the entries appended to a node's log since the last event. */
  private checkLogMatching(id: NodeId, key: string, store: LogView): void {
    const first = store.firstIndex();
    const last = store.lastIndex();
    const checked = this.matchedUpTo.get(key);
    let from = first - 1;
    if (checked !== undefined && checked.index >= first - 1) {
      const unchanged = checked.index <= last && store.term(checked.index) === checked.term;
      // A follower's log was truncated: re-read from its durable commit (which cannot change).
      from = unchanged
        ? checked.index
        : Math.max(first - 1, Math.min(this.recordedUpTo.get(key) ?? 0, last));
    }
    let previousTerm = store.term(from);
    for (let index = from + 1; index <= last; index++) {
      const term = store.term(index);
      const entryKey = index * ENTRY_KEY_TERMS + term;
      const known = this.previousTermOf.get(entryKey);
      if (known === undefined) this.previousTermOf.set(entryKey, previousTerm);
      else if (known !== previousTerm) {
        this.violate(
          "log-matching",
          `node ${id} holds entry ${index} of term ${term} after an entry of term ${previousTerm}; ` +
            `elsewhere the same entry follows term ${known}`,
        );
        break;
      }
      previousTerm = term;
    }
    this.matchedUpTo.set(key, { index: last, term: store.term(last) });
  }

  /** A leader never truncates or overwrites its own log while it leads a term. */
  private checkLeaderAppendOnly(id: NodeId, key: string, term: number, store: LogView): void {
    const last = store.lastIndex();
    const before = this.leaderLogEnd.get(key);
    if (before !== undefined && before.term === term) {
      if (last < before.index) {
        this.violate(
          "leader-append-only",
          `leader ${id} of term ${term}: its log went from ${before.index} entries back to ${last}`,
        );
      } else if (before.index >= store.firstIndex() - 1) {
        const now = store.term(before.index);
        if (now !== before.entryTerm) {
          this.violate(
            "leader-append-only",
            `leader ${id} of term ${term}: entry ${before.index} changed from term ${before.entryTerm} to ${now}`,
          );
        }
      }
    }
    this.leaderLogEnd.set(key, { term, index: last, entryTerm: store.term(last) });
  }

  private checkLeaderCompleteness(id: NodeId, term: number, store: LogView): void {
    const key = `${id}@${term}`;
    let index = this.leaderCheckedUpTo.get(key) ?? 0;
    for (index = Math.max(index + 1, store.firstIndex()); index <= this.maxCommitted; index++) {
      const entry = this.committed.get(index);
      if (entry === undefined || entry.seenAtMaxTerm >= term) continue;
      const have = index > store.lastIndex() ? undefined : store.term(index);
      if (have !== entry.term) {
        this.violate(
          "leader-completeness",
          `leader ${id} of term ${term} has ${have === undefined ? "no entry" : `term ${have}`} at index ${index}, where term ${entry.term} was committed earlier`,
        );
        break;
      }
    }
    this.leaderCheckedUpTo.set(key, index - 1);
  }

  /** How many distinct terms had a leader. */
  get termsWithLeader(): number {
    return this.leaderOfTerm.size;
  }
}

/**
 * The core's term, role and commit index, read through its inspection seam:
 * `RaftNode.status()` also copies every peer's progress, too slow to call after every event.
 * Undefined once the node stopped.
 */
function coreState(
  node: RaftNode<SimResult>,
): { readonly term: number; readonly role: string; readonly commit: number } | undefined {
  return node.inspect();
}
