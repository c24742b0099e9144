/**
 * Replays write-ahead-log records, in order, into the log they describe: the last hard state,
 * the last snapshot record (the point a leader's snapshot replaced the log at) and the run of
 * entries after it, a later record for an index superseding the earlier ones and everything
 * after them (suffix truncation). Pure: recovery feeds it the records of every segment.
 */
import { StorageCorruptError } from "../common/errors.js";
import type { Entry, HardState } from "../raft/types.js";
import { RecordType, type WalRecord } from "./wal-record.js";

/** Where a record came from, for error messages. */
export interface RecordLocation {
  readonly file: string;
  readonly offsetBytes: number;
}

/** The log as the records describe it. */
export interface ReplayedLog {
  /** The last hard state record, if any. */
  readonly hardState: HardState | undefined;
  /** The last snapshot record: entries before it were dropped when it was written. */
  readonly snapshotMark: { readonly index: number; readonly term: number } | undefined;
  /** Contiguous entries, in index order (after `snapshotMark.index` if there is one). */
  readonly entries: readonly Entry[];
}

/** Accumulates records into a {@link ReplayedLog}. */
export class WalReplay {
  private hardState: HardState | undefined;
  private snapshotMark: { index: number; term: number } | undefined;
  private entries: Entry[] = [];

  /**
   * Applies one record.
   * @throws StorageCorruptError if the record leaves a gap or reaches behind the log's start:
   *   the store never writes such a sequence, so the data is not what was written.
   */
  apply(record: WalRecord, location: RecordLocation): void {
    switch (record.type) {
      case RecordType.HardState:
        this.hardState = record.hardState;
        return;
      case RecordType.Snapshot:
        this.snapshotMark = { index: record.index, term: record.term };
        this.entries = [];
        return;
      case RecordType.Entry:
        this.applyEntry(record.entry, location);
        return;
    }
  }

  private applyEntry(entry: Entry, location: RecordLocation): void {
    const first = this.entries[0]?.index ?? (this.snapshotMark?.index ?? entry.index - 1) + 1;
    const last = first + this.entries.length - 1;
    if (entry.index > last + 1) {
      throw new StorageCorruptError(
        location.file,
        location.offsetBytes,
        `entry ${entry.index} follows entry ${last}: a gap in the log`,
      );
    }
    if (entry.index < first) {
      if (this.snapshotMark !== undefined) {
        throw new StorageCorruptError(
          location.file,
          location.offsetBytes,
          `entry ${entry.index} reaches behind the snapshot at ${this.snapshotMark.index}`,
        );
      }
      // The log's start was in segments compaction removed (all at or below a snapshot): this
      // rewrite supersedes everything still known, and what came before it lies below the
      // snapshot, where recovery does not look.
      this.entries = [entry];
      return;
    }
    // A rewrite of an index drops it and everything after it (a follower's conflicting suffix).
    this.entries.length = entry.index - first;
    this.entries.push(entry);
  }

  /** The log replayed so far. Never throws. */
  result(): ReplayedLog {
    return { hardState: this.hardState, snapshotMark: this.snapshotMark, entries: this.entries };
  }
}
