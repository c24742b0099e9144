/**
 * The read half of a {@link LogStore} answered from an in-memory copy of the log
 * ({@link MemoryStorage}): both log stores keep one (the WAL store rebuilds it at recovery), so
 * reads never touch the disk.
 */
import type { MemoryStorage } from "../raft/storage.js";
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.js";

/** Reads of a log store from its in-memory copy; subclasses add the writes. */
export abstract class MemoryBackedReads {
  /** @param memory the in-memory copy of the log the reads answer from. */
  protected constructor(protected readonly memory: MemoryStorage) {}

  /** The hard state and configuration to start from. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return this.memory.initialState();
  }
  /** Entries in `[lo, hi)`, at most `maxSizeBytes` (at least one). */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    return this.memory.entries(lo, hi, maxSizeBytes);
  }
  /** The term of entry `index`. */
  term(index: number): number {
    return this.memory.term(index);
  }
  /** The first index still in the log. */
  firstIndex(): number {
    return this.memory.firstIndex();
  }
  /** The last index in the log. */
  lastIndex(): number {
    return this.memory.lastIndex();
  }
  /** The newest snapshot. */
  snapshot(): Snapshot {
    return this.memory.snapshot();
  }
}
