import type { StorageFullError } from "../common/errors.js";
import type { Storage } from "../raft/storage.js";
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata } from "../raft/types.js";

/** What one Ready asks to be made durable. */
export interface LogUpdate {
  /** The new hard state, if it changed. */
  readonly hardState?: HardState;
  /** Entries to append; any stored entries at or after the first one's index are replaced. */
  readonly entries: readonly Entry[];
  /** A snapshot from the leader that replaces the log up to its index. */
  readonly snapshot?: Snapshot;
}

/** A snapshot being saved a piece at a time ({@link LogStore.beginSnapshot}). */
export interface SnapshotWriter {
  /** Appends a piece; its buffer may be reused once this resolves. */
  write(piece: Uint8Array): Promise<void>;
  /** Makes the snapshot durable and current, as `saveSnapshot` would; returns its metadata. */
  commit(): Promise<SnapshotMetadata>;
  /** Drops it (no longer wanted, or a write failed). Idempotent; never throws. */
  abort(): Promise<void>;
}

/**
 * The durable raft log as the runtime uses it: the core's synchronous read side
 * ({@link Storage}) plus asynchronous writes whose promises resolve only once the data is
 * durable. The runtime issues one {@link save} at a time, in order.
 */
export interface LogStore extends Storage {
  /**
   * Makes a Ready's snapshot, entries and hard state durable, in that order. With `sync`
   * false the write may stay in the page cache (nothing in it promises durability).
   * @throws StorageCorruptError if the store found bad data; the node must stop.
   */
  save(update: LogUpdate, options: { readonly sync: boolean }): Promise<void>;
  /**
   * Records a snapshot the application took of its state machine at `index` (≤ applied), so a
   * restart or a lagging follower can start from it.
   */
  saveSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot>;
  /**
   * Optional: {@link saveSnapshot} for data that arrives in pieces, `sizeBytes` in all, so that
   * a large state encoded a turn at a time is never held whole. Nothing changes until
   * {@link SnapshotWriter.commit}; throws as `saveSnapshot` does.
   */
  beginSnapshot?(index: number, confState: ConfState, sizeBytes: number): Promise<SnapshotWriter>;
  /** Drops entries before `index` (which must be ≤ the newest snapshot's index). */
  compact(index: number): Promise<void>;
  /**
   * Optional: entries at or below this index hold data that never changes and that the store
   * keeps in memory anyway (committed entries it read from disk when it opened), so whoever
   * applies them may keep views into their data instead of copies. 0 or absent: none are.
   */
  readonly stableDataThroughIndex?: number;
  /**
   * The error of a write that waits for space on a full disk (a {@link save} that will resolve
   * once space is freed), or undefined. Stores that cannot fill up need not implement it.
   */
  storageFull?(): StorageFullError | undefined;
  /** Releases the store (files, locks). Further calls fail. */
  close(): Promise<void>;
}
