/**
 * The durable raft log as the consensus core reads it ({@link Storage}), its errors, and an
 * in-memory implementation ({@link MemoryStorage}) for tests and the simulator.
 */

import { invariant } from "../common/assert.js";
import { BlixardError } from "../common/errors.js";
import { countWithinSize } from "./entries.js";
import {
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  EntryType,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from "./types.js";

/** The entries asked for were compacted into a snapshot. */
export class CompactedError extends BlixardError {
  readonly code = "NOT_FOUND";
  /** @param index The index that was asked for, when known (only used in the message). */
  constructor(index?: number) {
    super(
      index === undefined
        ? "requested log entries were compacted into a snapshot; fetch the snapshot instead"
        : `log entry ${index} was compacted into a snapshot; fetch the snapshot instead`,
    );
  }
}

/** The entries asked for are not in the log (yet). */
export class LogUnavailableError extends BlixardError {
  readonly code = "NOT_FOUND";
}

/** A snapshot is being made; ask again later. */
export class SnapshotTemporarilyUnavailableError extends BlixardError {
  readonly code = "UNAVAILABLE";
}

/**
 * The snapshot given (or asked for) is not newer than the one already held. Callers applying a
 * snapshot may ignore it: the newer state is already there.
 */
export class SnapshotOutOfDateError extends BlixardError {
  readonly code = "CONFLICT";
}

/** The read side of the durable raft log, as the core sees it (etcd Storage). Synchronous. */
export interface Storage {
  /** The persisted hard state and the configuration as of the last snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most maxSizeBytes in total (entryWireSize) but always at least one if
   * any is in range. Throws CompactedError if lo < firstIndex(), LogUnavailableError if
   * hi > lastIndex()+1.
   */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[];
  /**
   * Term of entry i, for i in [firstIndex()-1, lastIndex()] (firstIndex()-1 is the snapshot's
   * index/term). CompactedError below, LogUnavailableError above.
   */
  term(index: number): number;
  /** The first index whose entry is available: the snapshot index + 1. */
  firstIndex(): number;
  /** The index of the last entry (the snapshot index if there are no entries after it). */
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

/** A placeholder entry recording the index and term that a snapshot ends at. */
function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: EMPTY_SNAPSHOT.data };
}

/**
 * An in-memory Storage (etcd MemoryStorage); the test harness and the simulator use it. Keeps a
 * dummy entry at position 0 holding the snapshot index/term, so that term(firstIndex()-1) can be
 * answered without the snapshot's data.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private currentSnapshot: Snapshot;
  /**
   * `log[0]` is the dummy; `log[k]` has index `log[0].index + k`. Never handed out: readers get
   * copies, so it may be truncated and extended in place.
   */
  private readonly log: Entry[];

  /**
   * @param options.confState The configuration of a bootstrapping node; it becomes the confState
   *   of the initial (index 0) snapshot, which initialState() reports until a snapshot replaces it.
   */
  constructor(options?: { confState?: ConfState }) {
    this.currentSnapshot =
      options?.confState === undefined
        ? EMPTY_SNAPSHOT
        : {
            metadata: { index: 0, term: 0, confState: options.confState },
            data: EMPTY_SNAPSHOT.data,
          };
    this.log = [dummyEntry(0, 0)];
  }

  /** The hard state and the snapshot's configuration. Never throws. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.currentSnapshot.metadata.confState };
  }

  /** Records the hard state that initialState() returns. Never throws. */
  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /**
   * Entries in [lo, hi), size-limited as {@link Storage.entries} says.
   * @throws CompactedError if lo < firstIndex().
   * @throws LogUnavailableError if hi > lastIndex()+1.
   * @throws InternalError if lo > hi.
   */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    invariant(lo <= hi, () => `invalid entries range [${lo}, ${hi})`);
    const dummyIndex = this.dummyIndex();
    if (lo <= dummyIndex) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) {
      throw new LogUnavailableError(
        `log entries up to ${hi - 1} are not available; the last index is ${this.lastIndex()}`,
      );
    }
    if (lo === hi) return [];
    const from = lo - dummyIndex;
    const to = hi - dummyIndex;
    const count = Math.max(1, countWithinSize(this.log, { from, to, maxSizeBytes }));
    return this.log.slice(from, from + count);
  }

  /**
   * Term of the entry at index.
   * @throws CompactedError if index < firstIndex()-1.
   * @throws LogUnavailableError if index > lastIndex().
   */
  term(index: number): number {
    const dummyIndex = this.dummyIndex();
    if (index < dummyIndex) throw new CompactedError(index);
    const entry = this.log[index - dummyIndex];
    if (entry === undefined) {
      throw new LogUnavailableError(
        `log entry ${index} is not available; the last index is ${this.lastIndex()}`,
      );
    }
    return entry.term;
  }

  /** The snapshot index + 1. Never throws. */
  firstIndex(): number {
    return this.dummyIndex() + 1;
  }

  /** The index of the last entry, or the snapshot index if none follows it. Never throws. */
  lastIndex(): number {
    return this.dummyIndex() + this.log.length - 1;
  }

  /** The most recent snapshot. Never throws. */
  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  /**
   * Replaces the whole log with the snapshot: every entry is dropped, as the snapshot supersedes
   * them (the caller appends entries after it later).
   * @throws SnapshotOutOfDateError if the snapshot is not newer than the current one (the caller
   *   may ignore it).
   */
  applySnapshot(snapshot: Snapshot): void {
    const currentIndex = this.currentSnapshot.metadata.index;
    if (snapshot.metadata.index <= currentIndex) {
      throw new SnapshotOutOfDateError(
        `snapshot at index ${snapshot.metadata.index} is not newer than the current one at ${currentIndex}`,
      );
    }
    this.currentSnapshot = snapshot;
    this.log.length = 0;
    this.log.push(dummyEntry(snapshot.metadata.index, snapshot.metadata.term));
  }

  /**
   * Makes (and keeps) a snapshot at index, which must be in the log. The entries up to it stay
   * until {@link compact} drops them, so slow followers can still be sent entries.
   * @param confState The configuration as of index; undefined keeps the current snapshot's one.
   * @throws SnapshotOutOfDateError if index <= the current snapshot index.
   * @throws InternalError if index > lastIndex().
   */
  createSnapshot(index: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    const currentIndex = this.currentSnapshot.metadata.index;
    if (index <= currentIndex) {
      throw new SnapshotOutOfDateError(
        `cannot snapshot at index ${index}: the current snapshot is at ${currentIndex}`,
      );
    }
    invariant(
      index <= this.lastIndex(),
      () => `snapshot index ${index} is beyond the last index ${this.lastIndex()}`,
    );
    // index > currentIndex >= dummyIndex (the dummy is at or after the last snapshot).
    const term = this.term(index);
    this.currentSnapshot = {
      metadata: { index, term, confState: confState ?? this.currentSnapshot.metadata.confState },
      data,
    };
    return this.currentSnapshot;
  }

  /**
   * Discards the entries before index; entry `index` becomes the new dummy (only its index and term
   * are kept). The application calls it after a snapshot covers index.
   * @throws CompactedError if index <= the current dummy index (already compacted).
   * @throws InternalError if index > lastIndex().
   */
  compact(index: number): void {
    const dummyIndex = this.dummyIndex();
    if (index <= dummyIndex) throw new CompactedError(index);
    invariant(
      index <= this.lastIndex(),
      () => `compaction index ${index} is beyond the last index ${this.lastIndex()}`,
    );
    const position = index - dummyIndex;
    const term = (this.log[position] as Entry).term;
    this.log.splice(0, position);
    this.log[0] = dummyEntry(index, term);
  }

  /**
   * Appends entries, which must be contiguous. Entries overlapping existing ones replace them
   * from the first overlapping index on (truncate then append); entries wholly before
   * firstIndex() are ignored (they are in the snapshot).
   * @throws InternalError if the entries start after lastIndex()+1 (a gap).
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const firstIndex = this.firstIndex();
    const lastNewIndex = first.index + entries.length - 1;
    if (lastNewIndex < firstIndex) return;
    // Entries before firstIndex are already covered by the snapshot.
    const skip = Math.max(0, firstIndex - first.index);
    const position = first.index + skip - this.dummyIndex();
    invariant(
      position <= this.log.length,
      () =>
        `missing log entries: appending from ${first.index + skip} after last index ${this.lastIndex()}`,
    );
    this.log.length = position;
    // A loop rather than push(...entries): spreading a large array overflows the call stack.
    for (let i = skip; i < entries.length; i++) this.log.push(entries[i] as Entry);
  }

  private dummyIndex(): number {
    return (this.log[0] as Entry).index;
  }
}
