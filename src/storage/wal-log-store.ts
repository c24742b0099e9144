/**
 * Blixard's embedded, default {@link LogStore}: a segmented, checksummed write-ahead log plus
 * snapshot files in one data directory (see ARCHITECTURE.md, "Storage").
 *
 * The core reads the log synchronously, so every entry after the newest snapshot is kept in
 * memory (the runtime's snapshot cadence bounds them, as with etcd's MemoryStorage plus WAL);
 * the disk is written on the hot path and read when the store opens.
 *
 * The newest snapshot's *data* is not kept in memory: it is as large as the state itself, which
 * the state machine already holds. The store hands out the data it loaded at open once (to the
 * runtime's restore); asked for the snapshot later (a follower needs it), it reads the file in
 * the background and answers "temporarily unavailable" meanwhile, as etcd's storage may: the core
 * tries again on the follower's next heartbeat response, and the data read back is again handed
 * out once (the transport holds it while it sends).
 */
import { invariant } from "../common/assert.js";
import {
  StorageCorruptError,
  StorageFullError,
  TooLargeError,
  UnavailableError,
} from "../common/errors.js";
import {
  MemoryStorage,
  SnapshotOutOfDateError,
  SnapshotTemporarilyUnavailableError,
} from "../raft/storage.js";
import {
  EMPTY_CONF_STATE,
  type ConfState,
  type Entry,
  type Snapshot,
  type SnapshotMetadata,
} from "../raft/types.js";
import type { FileSystem } from "./fs.js";
import { acquireDirectoryLock, type DirectoryLock } from "./lock.js";
import type { LogStore, LogUpdate, SnapshotWriter } from "./log-store.js";
import { MemoryBackedReads } from "./memory-backed-reads.js";
import { retryWhileFull, timerSleep } from "./retry-while-full.js";
import {
  listSnapshotFiles,
  loadNewestSnapshot,
  pruneSnapshotFiles,
  readSnapshotFile,
  removeTemporaryFiles,
  SnapshotFileWriter,
  writeInPieces,
  writeSnapshotFile,
} from "./snapshot-file.js";
import { Wal, type WalOptions, type WalStats } from "./wal.js";
import { RecordType, type WalRecord } from "./wal-record.js";
import { listSegments, type RecoveredWal } from "./wal-recovery.js";
import type { ReplayedLog } from "./wal-replay.js";

/** Options of {@link WalLogStore.open}. */
export interface WalLogStoreOptions extends WalOptions {
  /** The file system (`NodeFileSystem` for real, `MemoryFileSystem` in the simulator and tests). */
  readonly fs: FileSystem;
  /** The configuration of a new cluster's node; used only when the directory is new. */
  readonly confState?: ConfState;
  /** Largest entry data accepted, in bytes; larger ones fail with TOO_LARGE. Default 16 MiB. */
  readonly maxEntrySizeBytes?: number;
  /** Largest snapshot data accepted, in bytes; larger fails with TOO_LARGE. Default 1 GiB. */
  readonly maxSnapshotSizeBytes?: number;
  /** Snapshot files kept; older ones are pruned. Default 2. */
  readonly snapshotsKept?: number;
  /**
   * Told when reading the newest snapshot back (to send it to a follower) failed; the store
   * tries again after {@link SNAPSHOT_RELOAD_RETRY_MS}. Must not throw.
   */
  readonly onSnapshotReadFailed?: (error: Error) => void;
}

/** After a failed read of the snapshot file, the next attempt waits this long. */
export const SNAPSHOT_RELOAD_RETRY_MS = 1000;

/** The data the in-memory log holds for a snapshot: none (see the module comment). */
const NO_DATA = new Uint8Array(0);

/** Defaults of {@link WalLogStoreOptions}. */
export const WAL_LOG_STORE_DEFAULTS = Object.freeze({
  maxEntrySizeBytes: 16 * 1024 * 1024,
  maxSnapshotSizeBytes: 1024 * 1024 * 1024,
  snapshotsKept: 2,
});

/** What {@link WalLogStore.open} found, for logs and tests. */
export interface WalRecoveryReport {
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  readonly segments: number;
  /** The torn tail cut from the last segment, if any. */
  readonly truncated: RecoveredWal["truncated"];
}

/** The durable raft log on a write-ahead log and snapshot files. Open with {@link WalLogStore.open}. */
export class WalLogStore extends MemoryBackedReads implements LogStore {
  private closed = false;
  /** Set while a leader's snapshot waits for space on a full disk. */
  private snapshotFull: StorageFullError | undefined;
  /** Set while a leader's snapshot is being written: later saves wait for it, to keep order. */
  private installing: Promise<void> | undefined;
  /** The newest snapshot's data until it is handed out (see the module comment). */
  private snapshotData: Uint8Array | undefined;
  /** Set while the newest snapshot's file is being read back. */
  private reloading: Promise<void> | undefined;
  /**
   * The commit index recovered at open: those entries are committed (never rewritten) and their
   * data are views into the segment buffers recovery read, which nothing writes to again.
   */
  readonly stableDataThroughIndex: number;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    memory: MemoryStorage,
    private readonly wal: Wal,
    private readonly lock: DirectoryLock,
    private readonly hooks: Pick<WalOptions, "sleep" | "onStorageFull"> &
      Pick<WalLogStoreOptions, "onSnapshotReadFailed">,
    private readonly limits: {
      readonly maxEntrySizeBytes: number;
      readonly maxSnapshotSizeBytes: number;
      readonly snapshotsKept: number;
    },
    /** What recovery found when the store opened. */
    readonly recovery: WalRecoveryReport,
    snapshotData: Uint8Array,
  ) {
    super(memory);
    this.snapshotData = snapshotData;
    this.stableDataThroughIndex = Math.min(
      memory.initialState().hardState.commit,
      memory.lastIndex(),
    );
  }

  /**
   * Opens (or creates) the data directory `dir`: takes its lock, loads and verifies the newest
   * snapshot, recovers the write-ahead log (cutting a torn tail) and rebuilds the log in memory.
   * @throws UnavailableError if another process holds the directory.
   * @throws StorageCorruptError (naming file and offset) on damage that is not a torn tail.
   */
  static async open(dir: string, options: WalLogStoreOptions): Promise<WalLogStore> {
    const fs = options.fs;
    const limits = {
      maxEntrySizeBytes: options.maxEntrySizeBytes ?? WAL_LOG_STORE_DEFAULTS.maxEntrySizeBytes,
      maxSnapshotSizeBytes:
        options.maxSnapshotSizeBytes ?? WAL_LOG_STORE_DEFAULTS.maxSnapshotSizeBytes,
      snapshotsKept: options.snapshotsKept ?? WAL_LOG_STORE_DEFAULTS.snapshotsKept,
    };
    invariant(limits.snapshotsKept >= 1, "snapshotsKept must be at least 1");
    await fs.mkdir(dir);
    const lock = await acquireDirectoryLock(fs, dir);
    try {
      await removeTemporaryFiles(fs, dir);
      const isNew =
        (await listSegments(fs, dir)).length === 0 &&
        (await listSnapshotFiles(fs, dir)).length === 0;
      if (isNew) {
        // The bootstrap configuration is the index-0 snapshot, durable before any log record.
        await writeSnapshotFile(fs, dir, {
          metadata: { index: 0, term: 0, confState: options.confState ?? EMPTY_CONF_STATE },
          data: new Uint8Array(0),
        });
      }
      // Read side by side: both are mostly the kernel copying files into fresh memory, on the
      // thread pool, so the snapshot's reads and the segments' overlap.
      const [loaded, opened] = await Promise.allSettled([
        loadNewestSnapshot(fs, dir),
        Wal.open(fs, dir, options),
      ]);
      if (loaded.status === "rejected" || loaded.value === undefined) {
        if (opened.status === "fulfilled") await opened.value.wal.close();
        throw loaded.status === "rejected"
          ? loaded.reason
          : new StorageCorruptError(dir, 0, "the log has segments but no snapshot file");
      }
      if (opened.status === "rejected") throw opened.reason;
      const snapshot = loaded.value;
      const { wal, recovered } = opened.value;
      try {
        const memory = rebuild(dir, snapshot, recovered.log);
        if (needsSnapshotMark(snapshot, recovered.log, memory)) {
          // A leader's snapshot file became durable but the crash came before its log record:
          // the log's records still end elsewhere. Write the record now, before any entry, or
          // the next entries would replay after a gap or after a stale entry at the snapshot's
          // index (and be dropped with it).
          const { index, term } = snapshot.metadata;
          await wal.append([{ type: RecordType.Snapshot, index, term }], { sync: true });
        }
        return new WalLogStore(
          fs,
          dir,
          memory,
          wal,
          lock,
          options,
          limits,
          {
            snapshotIndex: snapshot.metadata.index,
            lastIndex: memory.lastIndex(),
            segments: recovered.segments.length,
            truncated: recovered.truncated,
          },
          snapshot.data,
        );
      } catch (error) {
        await wal.close();
        throw error;
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** The write-ahead log's counters (batches, fsyncs, bytes). */
  walStats(): WalStats {
    return { ...this.wal.stats };
  }

  /** The number of segment files the log has now. */
  segmentCount(): number {
    return this.wal.segmentInfos().length;
  }

  /**
   * The error of a write that waits for space on a full disk, or undefined when writes go
   * through. The runtime refuses new proposals with it meanwhile.
   */
  storageFull(): StorageFullError | undefined {
    return this.snapshotFull ?? this.wal.storageFull();
  }

  private checkOpen(): void {
    if (this.closed) throw new UnavailableError(`the log store of ${this.dir} is closed`);
  }

  /**
   * @inheritdoc
   * The in-memory log changes at once (in call order), the promise resolves when the records
   * are durable (with `sync`) or written. Concurrent saves share writes and fsyncs.
   * @throws TooLargeError for an entry over `maxEntrySizeBytes` (nothing is saved).
   * @throws UnavailableError once closed or after a failed write.
   * @throws InternalError for a hard state that commits past the log (the caller's bug).
   */
  async save(update: LogUpdate, options: { readonly sync: boolean }): Promise<void> {
    this.checkOpen();
    for (const entry of update.entries) this.checkEntrySize(entry);
    while (this.installing !== undefined) await this.installing;
    const records: WalRecord[] = [];
    const snapshot = update.snapshot;
    if (snapshot !== undefined && snapshot.metadata.index > this.memory.snapshot().metadata.index) {
      this.checkSnapshotSize(snapshot.data.byteLength);
      // On a full disk the install waits for space (as the WAL's writes do): nothing of this
      // update is acknowledged before it is durable.
      const done = retryWhileFull(() => this.installSnapshotFile(snapshot), {
        sleep: this.hooks.sleep ?? timerSleep,
        giveUp: () => this.closed,
        onChange: (error) => {
          this.snapshotFull = error;
          this.hooks.onStorageFull?.(error);
        },
      });
      this.installing = done;
      try {
        await done;
      } finally {
        this.installing = undefined;
      }
      try {
        this.memory.applySnapshot({ metadata: snapshot.metadata, data: NO_DATA });
        // The runtime restores from the update itself; the data is read back if a send needs it.
        this.snapshotData = undefined;
      } catch (error) {
        if (!(error instanceof SnapshotOutOfDateError)) throw error;
      }
      const { index, term } = snapshot.metadata;
      records.push({ type: RecordType.Snapshot, index, term });
    }
    if (update.entries.length > 0) {
      // Entries the snapshot already covers are dropped here and never written, as in memory.
      const firstIndex = this.memory.firstIndex();
      this.memory.append(update.entries);
      for (const entry of update.entries) {
        if (entry.index >= firstIndex) records.push({ type: RecordType.Entry, entry });
      }
    }
    if (update.hardState !== undefined) {
      // Recovery calls a commit past the last entry corruption (rebuild below); the core never
      // commits past its log, and the entries of the same Ready are already appended above.
      const lastIndex = this.memory.lastIndex();
      invariant(
        update.hardState.commit <= lastIndex,
        () => `hard state commits ${update.hardState?.commit} past the last entry ${lastIndex}`,
      );
      this.memory.setHardState(update.hardState);
      records.push({ type: RecordType.HardState, hardState: update.hardState });
    }
    if (records.length === 0) return;
    await this.wal.append(records, options);
  }

  private async installSnapshotFile(snapshot: Snapshot): Promise<void> {
    await writeSnapshotFile(this.fs, this.dir, snapshot);
    await pruneSnapshotFiles(this.fs, this.dir, this.limits.snapshotsKept);
  }

  private checkEntrySize(entry: Entry): void {
    if (entry.data.byteLength > this.limits.maxEntrySizeBytes) {
      throw new TooLargeError(
        `log entry ${entry.index} of ${entry.data.byteLength} bytes exceeds the limit of ${this.limits.maxEntrySizeBytes} bytes`,
      );
    }
  }

  private checkSnapshotSize(sizeBytes: number): void {
    if (sizeBytes > this.limits.maxSnapshotSizeBytes) {
      throw new TooLargeError(
        `snapshot of ${sizeBytes} bytes exceeds the limit of ${this.limits.maxSnapshotSizeBytes} bytes`,
      );
    }
  }

  private checkSnapshotIsNewer(index: number): void {
    const current = this.memory.snapshot().metadata.index;
    if (index <= current) {
      throw new SnapshotOutOfDateError(
        `cannot snapshot at index ${index}: the current snapshot is at ${current}`,
      );
    }
  }

  /**
   * @inheritdoc
   * The snapshot file is durable before the in-memory snapshot changes; older files beyond
   * `snapshotsKept` are pruned.
   * @throws SnapshotOutOfDateError if `index` is not past the current snapshot.
   * @throws TooLargeError past `maxSnapshotSizeBytes`.
   * @throws StorageFullError on a full disk (nothing changed: take the snapshot again later).
   */
  async saveSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    const writer = await this.beginSnapshot(index, confState, data.byteLength);
    await writeInPieces(writer, data);
    return { metadata: await writer.commit(), data };
  }

  /**
   * @inheritdoc
   * Throws as {@link saveSnapshot}: at the start, from `write` (a full disk; the partial file is
   * removed) and from `commit` (a newer snapshot installed meanwhile).
   */
  async beginSnapshot(
    index: number,
    confState: ConfState,
    sizeBytes: number,
  ): Promise<SnapshotWriter> {
    this.checkOpen();
    this.checkSnapshotSize(sizeBytes);
    this.checkSnapshotIsNewer(index);
    const term = this.memory.term(index);
    const file = await SnapshotFileWriter.create(
      this.fs,
      this.dir,
      { index, term, confState },
      sizeBytes,
    );
    return {
      write: (piece) => file.write(piece),
      abort: () => file.abort(),
      commit: async () => {
        try {
          this.checkOpen();
          this.checkSnapshotIsNewer(index);
        } catch (error) {
          await file.abort();
          throw error;
        }
        await file.commit();
        const { metadata } = this.memory.createSnapshot(index, confState, NO_DATA);
        // Not kept: most snapshots are never sent, and a follower that needs one waits for a read.
        this.snapshotData = undefined;
        await pruneSnapshotFiles(this.fs, this.dir, this.limits.snapshotsKept);
        return metadata;
      },
    };
  }

  /** The newest snapshot's index, term and configuration (its data is not read). Never throws. */
  snapshotMetadata(): SnapshotMetadata {
    return this.memory.snapshot().metadata;
  }

  /**
   * @inheritdoc
   * Data in memory is handed out once and then forgotten (see the module comment); without it,
   * the store reads the file in the background.
   * @throws SnapshotTemporarilyUnavailableError while the file is being read back.
   */
  override snapshot(): Snapshot {
    const held = this.memory.snapshot();
    if (held.metadata.index === 0) return held;
    const data = this.snapshotData;
    if (data !== undefined) {
      this.snapshotData = undefined;
      return { metadata: held.metadata, data };
    }
    this.reloadSnapshotData(held.metadata);
    throw new SnapshotTemporarilyUnavailableError(
      `snapshot ${held.metadata.index} is being read back from disk; ask again shortly`,
    );
  }

  /** Reads the newest snapshot's file back, once at a time. Throws nothing. */
  private reloadSnapshotData(metadata: { readonly index: number; readonly term: number }): void {
    if (this.reloading !== undefined || this.closed) return;
    this.reloading = (async () => {
      try {
        const snapshot = await readSnapshotFile(this.fs, this.dir, metadata);
        // A newer snapshot may have replaced it meanwhile: that one is read when asked for.
        if (this.memory.snapshot().metadata.index === metadata.index) {
          this.snapshotData = snapshot.data;
        }
      } catch (error) {
        this.hooks.onSnapshotReadFailed?.(error as Error);
        await (this.hooks.sleep ?? timerSleep)(SNAPSHOT_RELOAD_RETRY_MS);
      } finally {
        this.reloading = undefined;
      }
    })();
  }

  /**
   * @inheritdoc
   * Drops entries before `index` from memory and deletes the segments whose records all lie at
   * or below `index`.
   * @throws InternalError if `index` is past the newest snapshot.
   */
  async compact(index: number): Promise<void> {
    this.checkOpen();
    const snapshotIndex = this.memory.snapshot().metadata.index;
    invariant(
      index <= snapshotIndex,
      () => `compaction to ${index} past the newest snapshot at ${snapshotIndex}`,
    );
    if (index > this.memory.firstIndex()) this.memory.compact(index);
    await this.wal.removeSegmentsThrough(index);
  }

  /** @inheritdoc Waits for writes in flight, then releases the directory lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.wal.close();
    } finally {
      await this.lock.release();
    }
  }
}

/**
 * True if the rebuilt log is the snapshot alone but the log's records do not end at it: the
 * records must then be told (a snapshot record) before entries follow it. Never throws.
 */
function needsSnapshotMark(snapshot: Snapshot, log: ReplayedLog, memory: MemoryStorage): boolean {
  const { index, term } = snapshot.metadata;
  if (index === 0 || memory.lastIndex() !== index) return false;
  const last = log.entries[log.entries.length - 1];
  if (last !== undefined) return last.index !== index || last.term !== term;
  return log.snapshotMark?.index !== index || log.snapshotMark.term !== term;
}

/**
 * The in-memory log from the newest snapshot and the replayed records: entries after the
 * snapshot, contiguous from it.
 * @throws StorageCorruptError if the records and the snapshot cannot both be right.
 */
function rebuild(dir: string, snapshot: Snapshot, log: ReplayedLog): MemoryStorage {
  const { index: snapshotIndex, term: snapshotTerm } = snapshot.metadata;
  const memory = new MemoryStorage({ confState: snapshot.metadata.confState });
  if (snapshotIndex > 0) memory.applySnapshot({ metadata: snapshot.metadata, data: NO_DATA });
  if (log.snapshotMark !== undefined && log.snapshotMark.index > snapshotIndex) {
    throw new StorageCorruptError(
      dir,
      0,
      `the log records a snapshot at index ${log.snapshotMark.index} but the newest snapshot file is at ${snapshotIndex}`,
    );
  }
  let entries = log.entries;
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (first !== undefined && last !== undefined && last.index > snapshotIndex) {
    if (first.index > snapshotIndex + 1) {
      throw new StorageCorruptError(
        dir,
        0,
        `the log starts at entry ${first.index} but the newest snapshot ends at ${snapshotIndex}: entries are missing`,
      );
    }
    const atSnapshot =
      first.index <= snapshotIndex ? entries[snapshotIndex - first.index] : undefined;
    // A different term at the snapshot's index means a leader's snapshot replaced this log but
    // the crash came before its log record: the snapshot wins, as the install would have had it.
    if (atSnapshot !== undefined && atSnapshot.term !== snapshotTerm) entries = [];
    const after = entries.filter((entry) => entry.index > snapshotIndex);
    memory.append(after);
  }
  const hardState = log.hardState;
  if (hardState !== undefined) {
    // A snapshot's index is committed by definition; the core refuses a commit below it.
    const commit = Math.max(hardState.commit, snapshotIndex);
    if (commit > memory.lastIndex()) {
      throw new StorageCorruptError(
        dir,
        0,
        `the hard state commits index ${commit} but the log ends at ${memory.lastIndex()}`,
      );
    }
    memory.setHardState({ ...hardState, commit });
  }
  return memory;
}
