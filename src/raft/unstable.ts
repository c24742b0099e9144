/**
 * The tail of the raft log that is not yet durable: entries (and possibly a snapshot) the node has
 * accepted but the application has not yet written to storage.
 */

import { invariant } from "../common/assert.js";
import { countWithinSize } from "./entries.js";
import type { Entry, Snapshot } from "./types.js";

/**
 * Entries and a snapshot not yet durable (etcd unstable). Entries sit at indexes offset,
 * offset+1, ... `offset` may be at or below the storage's last index: the unstable entries then
 * overwrite the durable ones from `offset` on when they are persisted.
 *
 * The entries array is handed out without copying (in a Ready, in messages), so once handed out
 * it is never mutated: the next change replaces it (copy on write).
 */
export class Unstable {
  /** A snapshot received from the leader and not yet durable. */
  snapshot: Snapshot | undefined = undefined;
  /** The index of `entries[0]`. */
  offset: number;
  #entries: Entry[] = [];
  /** True when `#entries` may be referenced outside this object, so must not be mutated. */
  #entriesShared = false;

  /** @param offset The index the first unstable entry will have (storage's lastIndex()+1). */
  constructor(offset: number) {
    this.offset = offset;
  }

  /**
   * The unstable entries, at indexes offset, offset+1, ... The array returned is never mutated
   * afterwards; treat it as read-only.
   */
  get entries(): Entry[] {
    this.#entriesShared = true;
    return this.#entries;
  }

  /** Replaces the unstable entries; the array is not copied and is never mutated afterwards. */
  set entries(entries: Entry[]) {
    this.#entries = entries;
    this.#entriesShared = true;
  }

  /** How many unstable entries there are (without handing out the array). Never throws. */
  entryCount(): number {
    return this.#entries.length;
  }

  /** The snapshot's index + 1 if there is an unstable snapshot, else undefined. Never throws. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /**
   * The last unstable entry's index, else the unstable snapshot's index, else undefined.
   * Never throws.
   */
  maybeLastIndex(): number | undefined {
    if (this.#entries.length > 0) return this.offset + this.#entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  /**
   * The term of the entry at index if the unstable part knows it (an unstable entry, or the
   * unstable snapshot's last index), else undefined. Never throws.
   */
  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      const snapshot = this.snapshot;
      return snapshot !== undefined && snapshot.metadata.index === index
        ? snapshot.metadata.term
        : undefined;
    }
    return this.#entries[index - this.offset]?.term;
  }

  /**
   * The entries up to (index, term) are durable: drop them if the term still matches. A mismatch
   * means the entry was overwritten by a newer leader after the write began, so the durable copy
   * is stale and the unstable one must still be written. Never throws.
   */
  stableTo(index: number, term: number): void {
    // Below offset the term could only match the snapshot, which stableSnapTo handles.
    if (index < this.offset) return;
    const position = index - this.offset;
    const entry = this.#entries[position];
    if (entry === undefined || entry.term !== term) return;
    // slice rather than splice: a shared array must not change, and an owned one is freshly
    // copied anyway, which also releases the memory of the persisted prefix.
    this.#entries = this.#entries.slice(position + 1);
    this.#entriesShared = false;
    this.offset = index + 1;
  }

  /** The snapshot at index is durable: drop it (if it is still the unstable one). Never throws. */
  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) {
      this.snapshot = undefined;
    }
  }

  /**
   * Resets to the snapshot: entries are dropped, offset = snapshot index + 1, and the snapshot is
   * kept until it is durable. Never throws.
   */
  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.#entries = [];
    this.#entriesShared = false;
    this.snapshot = snapshot;
  }

  /**
   * Appends contiguous entries, truncating any unstable suffix they conflict with. If
   * entries[0].index <= offset they replace all unstable entries and offset becomes
   * entries[0].index (the durable entries from there on are overwritten when persisted). The
   * array may be kept without copying: do not change it afterwards.
   * @throws InternalError if entries[0].index > the last unstable index + 1 (a gap).
   */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const last = entries[entries.length - 1] as Entry;
    // Contiguous entries (checked at the ends: O(1) on this hot path). Peer appends reach here
    // only after the core checked them one by one (raft.ts malformedAppend).
    invariant(
      last.index === first.index + entries.length - 1 && first.index > 0,
      () => `entries ${first.index}..${last.index} are not ${entries.length} contiguous indexes`,
    );
    // A snapshot not yet durable ends the log at its index; nothing may be written under it.
    invariant(
      this.snapshot === undefined || first.index > this.snapshot.metadata.index,
      () =>
        `appending from ${first.index} under the unstable snapshot at ${this.snapshot?.metadata.index}`,
    );
    const end = this.offset + this.#entries.length;
    if (first.index <= this.offset) {
      // Keep the caller's array rather than copying it; it is marked shared, so a later append
      // copies it before changing it.
      this.#entries = entries as Entry[];
      this.#entriesShared = true;
      this.offset = first.index;
      return;
    }
    invariant(
      first.index <= end,
      () => `missing log entries: appending from ${first.index} after unstable end ${end - 1}`,
    );
    if (this.#entriesShared) {
      // Truncate to [offset, first.index) and take a private copy in one step.
      this.#entries = this.#entries.slice(0, first.index - this.offset);
      this.#entriesShared = false;
    } else {
      this.#entries.length = first.index - this.offset;
    }
    // A loop rather than push(...entries): spreading a large array overflows the call stack.
    for (const entry of entries) this.#entries.push(entry);
    invariant(
      this.offset + this.#entries.length - 1 === last.index,
      "after an append the unstable log must end at the last entry appended",
    );
  }

  /**
   * Entries [lo, hi). Returns the entries array itself when the range covers it exactly.
   * @throws InternalError unless offset <= lo <= hi <= offset + entries.length.
   */
  slice(lo: number, hi: number): Entry[] {
    return this.sliceWithinSize(lo, hi, Infinity);
  }

  /**
   * The longest prefix of entries [lo, hi) whose total entryWireSize is at most maxSizeBytes
   * (possibly empty: the caller decides whether at least one is needed). Returns the entries array
   * itself when that prefix covers it exactly.
   * @throws InternalError unless offset <= lo <= hi <= offset + entries.length.
   */
  sliceWithinSize(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    this.checkBounds(lo, hi);
    const from = lo - this.offset;
    const to =
      maxSizeBytes === Infinity
        ? hi - this.offset
        : from + countWithinSize(this.#entries, { from, to: hi - this.offset, maxSizeBytes });
    if (from === 0 && to === this.#entries.length) return this.entries;
    return this.#entries.slice(from, to);
  }

  private checkBounds(lo: number, hi: number): void {
    invariant(lo <= hi, () => `invalid unstable slice [${lo}, ${hi})`);
    const end = this.offset + this.#entries.length;
    invariant(
      lo >= this.offset && hi <= end,
      () => `unstable slice [${lo}, ${hi}) out of bounds [${this.offset}, ${end})`,
    );
  }
}
