/**
 * The raft log: the durable prefix read through {@link Storage}, the not-yet-durable tail held in
 * {@link Unstable}, and the commit and applied indexes over both.
 */

import { invariant } from "../common/assert.js";
import { wireSize } from "./entries.js";
import { CompactedError, LogUnavailableError, type Storage } from "./storage.js";
import type { Entry, Snapshot } from "./types.js";
import { Unstable } from "./unstable.js";

/** The raft log: durable part read through Storage, unstable part in memory, plus commit/applied (etcd raftLog). */
export class RaftLog {
  /** The durable log, as of the last persisted Ready. */
  readonly storage: Storage;
  /** Entries and a snapshot accepted but not yet durable. */
  readonly unstable: Unstable;
  /** The highest index known to be committed by a quorum. Never decreases. */
  committed: number;
  /** The highest index the application has applied. committed >= applied; never decreases. */
  applied: number;
  /** Bounds the total entryWireSize of one nextCommittedEntries() batch. */
  private readonly maxCommittedSizePerReadyBytes: number;

  /**
   * committed = applied = storage.firstIndex()-1 initially (the caller then sets committed from
   * hard state via commitTo / loadCommitted and applied if known).
   * @param options.maxCommittedSizePerReadyBytes Bounds nextCommittedEntries() (at least one
   *   entry is always returned when any is ready).
   * @throws whatever storage.firstIndex() / lastIndex() throw.
   */
  constructor(storage: Storage, options: { maxCommittedSizePerReadyBytes: number }) {
    this.storage = storage;
    this.maxCommittedSizePerReadyBytes = options.maxCommittedSizePerReadyBytes;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    // Everything up to the last compaction is in the snapshot, hence committed and applied.
    const snapshotIndex = storage.firstIndex() - 1;
    this.committed = snapshotIndex;
    this.applied = snapshotIndex;
  }

  /** The first index whose entry is available (the snapshot index + 1). */
  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** The index of the last entry (or of the snapshot if no entry follows it). */
  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * The term of the last entry.
   * @throws InternalError if it cannot be read (the log is inconsistent).
   */
  lastTerm(): number {
    const lastIndex = this.lastIndex();
    const term = this.termIfKnown(lastIndex);
    invariant(term !== undefined, () => `term of the last index ${lastIndex} is unavailable`);
    return term;
  }

  /**
   * Term of entry i: from unstable or storage. [firstIndex()-1, lastIndex()] is in range.
   * @throws CompactedError if index < firstIndex()-1.
   * @throws LogUnavailableError if index > lastIndex().
   */
  term(index: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (index < dummyIndex) throw new CompactedError(index);
    const lastIndex = this.lastIndex();
    if (index > lastIndex) {
      throw new LogUnavailableError(
        `log entry ${index} is not available; the last index is ${lastIndex}`,
      );
    }
    return this.unstable.maybeTerm(index) ?? this.storage.term(index);
  }

  /** term(index), but 0 when out of range (compacted or unavailable). Throws nothing else. */
  termOrZero(index: number): number {
    return this.termIfKnown(index) ?? 0;
  }

  /** True if the entry at index exists and has the given term. */
  matchTerm(index: number, term: number): boolean {
    const ourTerm = this.termIfKnown(index);
    return ourTerm !== undefined && ourTerm === term;
  }

  /**
   * Follower append (etcd maybeAppend): if the entry at `index` has `logTerm`, appends `entries`
   * (which follow `index`) from the first conflicting or new one, then commits up to
   * min(committed, index + entries.length). Entries already present are kept, so a stale or
   * reordered message never truncates the log.
   * @returns the index of the last new entry, or undefined if the log does not match at index.
   * @throws InternalError if an entry at or below the commit index conflicts (safety violated).
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    entries: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflictIndex = this.findConflict(entries);
    if (conflictIndex !== 0) {
      invariant(
        conflictIndex > this.committed,
        () =>
          `entry ${conflictIndex} conflicts with committed entries (committed ${this.committed})`,
      );
      const skip = conflictIndex - (index + 1);
      this.append(skip === 0 ? entries : entries.slice(skip));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    // Postcondition: the log now holds the leader's entries through lastNewIndex (one O(1) term
    // lookup: checking the last one covers the rest by log matching).
    const lastNew = entries[entries.length - 1];
    invariant(
      lastNew === undefined || this.matchTerm(lastNew.index, lastNew.term),
      "after an append the log must hold its last entry",
    );
    return lastNewIndex;
  }

  /**
   * Leader/local append of contiguous entries that follow or overwrite the unstable tail. The
   * array may be kept without copying: do not change it afterwards.
   * @returns lastIndex() afterwards.
   * @throws InternalError if entries[0].index - 1 < committed (would overwrite committed entries),
   *   or if the entries leave a gap after lastIndex().
   */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    invariant(
      first.index - 1 >= this.committed,
      () =>
        `append after ${first.index - 1} would overwrite committed entries (committed ${this.committed})`,
    );
    invariant(
      first.index <= this.lastIndex() + 1,
      () => `missing log entries: appending from ${first.index} after ${this.lastIndex()}`,
    );
    this.unstable.truncateAndAppend(entries);
    const lastIndex = this.lastIndex();
    invariant(
      lastIndex === first.index + entries.length - 1,
      "after an append the log must end at the last entry appended",
    );
    return lastIndex;
  }

  /**
   * The index of the first entry that conflicts with the log (same index, different term) or is
   * not in it yet; 0 if all entries are already present. Entries must be contiguous.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Fast back-off (etcd findConflictByTerm): the largest index <= `index` whose term is <= `term`,
   * with that term. Every entry after it has a larger term, so cannot match a log whose entry at
   * `index` has `term`. If the term of an index it reaches is unknown (compacted or beyond the
   * last index) that index is returned with term 0: it may match, so the caller probes it.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let candidate = index; candidate > 0; candidate--) {
      const ourTerm = this.termIfKnown(candidate);
      if (ourTerm === undefined) return { index: candidate, term: 0 };
      if (ourTerm <= term) return { index: candidate, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  /** The entries not yet durable (the array is not copied; treat it as read-only). */
  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /**
   * Committed entries not yet applied, (applied, committed], at most
   * maxCommittedSizePerReadyBytes (at least one). Empty if none. May include unstable entries.
   */
  nextCommittedEntries(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= lo) return [];
    return this.slice(lo, this.committed + 1, this.maxCommittedSizePerReadyBytes);
  }

  /** True if nextCommittedEntries() would return entries. */
  hasNextCommittedEntries(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** The pending unstable snapshot, else storage.snapshot(). */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /**
   * Raises committed to tocommit; never lowers it.
   * @throws InternalError if tocommit > lastIndex() (the log was corrupted, truncated or lost).
   */
  commitTo(tocommit: number): void {
    if (tocommit <= this.committed) return;
    invariant(
      tocommit <= this.lastIndex(),
      () =>
        `commit index ${tocommit} is beyond the last index ${this.lastIndex()}; ` +
        "the raft log was corrupted, truncated or lost",
    );
    this.committed = tocommit;
  }

  /**
   * Leader commit rule (§5.4.2): commits maxIndex only if its entry is from the leader's `term`
   * (older-term entries commit indirectly) and maxIndex > committed.
   * @returns true if committed rose.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /**
   * Records that the application applied up to index. 0 is ignored (nothing applied yet).
   * @throws InternalError unless applied <= index <= committed.
   */
  appliedTo(index: number): void {
    if (index === 0) return;
    invariant(
      index <= this.committed && index >= this.applied,
      () => `applied index ${index} is out of range [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  /** Entries up to (index, term) are durable; see {@link Unstable.stableTo}. */
  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  /** The snapshot at index is durable; see {@link Unstable.stableSnapTo}. */
  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /**
   * The up-to-date check of §5.4.1: a log whose last entry is (lastIndex, term) is at least as up
   * to date as ours (a later last term wins; with equal terms, the longer log).
   */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourLastTerm = this.lastTerm();
    return term > ourLastTerm || (term === ourLastTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries from index to the end, at most maxSizeBytes (at least one). [] if index > lastIndex().
   * @throws CompactedError if index < firstIndex().
   */
  entries(index: number, maxSizeBytes: number): Entry[] {
    const lastIndex = this.lastIndex();
    if (index > lastIndex) return [];
    return this.slice(index, lastIndex + 1, maxSizeBytes);
  }

  /**
   * Entries [lo, hi) from storage and/or unstable, at most maxSizeBytes of entryWireSize (at
   * least one if lo < hi).
   * @throws CompactedError if lo < firstIndex().
   * @throws LogUnavailableError if hi > lastIndex()+1.
   * @throws InternalError if lo > hi.
   */
  slice(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    invariant(lo <= hi, () => `invalid log slice [${lo}, ${hi})`);
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    const lastIndex = this.lastIndex();
    if (hi > lastIndex + 1) {
      throw new LogUnavailableError(
        `log entries up to ${hi - 1} are not available; the last index is ${lastIndex}`,
      );
    }
    if (lo === hi) return [];
    const offset = this.unstable.offset;
    if (hi <= offset) return this.storage.entries(lo, hi, maxSizeBytes);
    if (lo >= offset) {
      const fitting = this.unstable.sliceWithinSize(lo, hi, maxSizeBytes);
      // An entry larger than the whole budget still goes out alone, so the log makes progress.
      return fitting.length > 0 ? fitting : this.unstable.slice(lo, lo + 1);
    }
    // The range spans the boundary: the durable part first, then unstable entries in what is left.
    const stored = this.storage.entries(lo, offset, maxSizeBytes);
    if (stored.length < offset - lo) return stored; // the size limit was reached in storage
    const remainingBytes = maxSizeBytes - wireSize(stored);
    const tail = this.unstable.sliceWithinSize(offset, hi, remainingBytes);
    // concat, not push: a Storage may hand out an array it still uses.
    return tail.length === 0 ? stored : stored.concat(tail);
  }

  /**
   * Resets the log to a snapshot received from the leader: committed = snapshot index, and the
   * unstable part holds only the snapshot until it is durable. applied is left to the caller.
   */
  restore(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    // The core installs only a snapshot past its commit index (raft.ts restore); the commit index
    // never goes back.
    invariant(
      index > this.committed,
      () =>
        `restoring a snapshot at ${index} would move the commit index back from ${this.committed}`,
    );
    this.committed = index;
    this.unstable.restore(snapshot);
    invariant(
      this.firstIndex() === index + 1 && this.lastIndex() === index,
      "after a restore the log must be exactly the snapshot",
    );
  }

  /** A one-line summary for logs and failure messages. */
  toString(): string {
    return (
      `committed=${this.committed} applied=${this.applied} ` +
      `unstable.offset=${this.unstable.offset} unstable.entries=${this.unstable.entryCount()}`
    );
  }

  /**
   * The term of the entry at index, or undefined if it is out of range. Out-of-range reads are
   * routine (a follower checks entries beyond its log), so they are answered without building
   * an exception.
   */
  private termIfKnown(index: number): number | undefined {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (error instanceof CompactedError || error instanceof LogUnavailableError) {
        return undefined;
      }
      throw error;
    }
  }
}
