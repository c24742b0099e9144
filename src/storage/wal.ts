/**
 * The write-ahead log's writer, with group commit: appends that arrive while a write and its
 * fdatasync are in flight are gathered into the next single write and its single fdatasync, and
 * each append's promise resolves only once the fsync that covers it has completed. Appends from
 * the same turn of the event loop share one write too. Records reach the file in the order
 * `append` was called, so what survives a crash is always a prefix of what was appended.
 *
 * Segments are opened for durable writes where the file system has them (`O_DSYNC`): a synced
 * batch is then one write that returns durable, one trip through the thread pool where write +
 * fdatasync took two (about 60 µs less per batch on this machine kind, and a shorter tail). Such
 * a file flushes only the range each write covers, so an unsynced write must never precede a
 * synced one unflushed: appends without `sync` are not written on their own but held, in order,
 * until the next synced append (or {@link Wal.close}) writes them in its batch. They only ever
 * carry what a crash may lose (raft's commit index), and a process crash now loses them too.
 *
 * Segments roll over at `segmentSizeBytes`: the old one is fsynced first, the new one starts
 * with its header and the current hard state, and is made durable (file and directory) before
 * any record goes into it.
 *
 * A full disk is not fatal: a write that fails with `ENOSPC` is retried with backoff (the appends
 * waiting behind it simply wait longer, and nothing after it is written first), and
 * {@link Wal.storageFull} says so meanwhile. Any other failure — a failed fsync above all — makes
 * the log unusable (see `io-error.ts`).
 */
import { invariant } from "../common/assert.js";
import {
  OverloadedError,
  StorageFullError,
  TooLargeError,
  UnavailableError,
} from "../common/errors.js";
import { joinPath, type FileHandle, type FileSystem } from "./fs.js";
import { storageIoError } from "./io-error.js";
import { retryWhileFull, timerSleep } from "./retry-while-full.js";
import { encodeRecord, RecordType, recordSizeBytes, type WalRecord } from "./wal-record.js";
import { recordMaxIndex, recoverWal, type RecoveredWal, type SegmentInfo } from "./wal-recovery.js";
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentFileName } from "./wal-segment.js";
import type { HardState } from "../raft/types.js";

/** Limits and sizes of a {@link Wal}. */
export interface WalOptions {
  /** A segment is closed and a new one started past this size. Default 64 MiB. */
  readonly segmentSizeBytes?: number;
  /** Largest single record (header included); larger ones fail with TOO_LARGE. Default 64 MiB. */
  readonly maxRecordSizeBytes?: number;
  /** Most bytes gathered into one write. Default 16 MiB. */
  readonly maxBatchBytes?: number;
  /** Most bytes waiting to be written; past it `append` fails with OVERLOADED. Default 256 MiB. */
  readonly maxPendingBytes?: number;
  /** Told how long each batch took to become durable (metrics). Not used by the log itself. */
  readonly syncObserver?: SyncObserver;
  /** Waits between retries of a write that found the disk full. Default: a timer. */
  readonly sleep?: (delayMs: number) => Promise<void>;
  /**
   * Told once when writing stalls on a full disk (with the error) and once when it resumes
   * (undefined). Must not throw.
   */
  readonly onStorageFull?: (error: StorageFullError | undefined) => void;
}

/** Times durable writes and fdatasync calls; the clock is the caller's, so the log reads none itself. */
export interface SyncObserver {
  /** A monotonic time in milliseconds. */
  now(): number;
  /** One durable write or fdatasync of `durationMs` completed. Must not throw. */
  observe(durationMs: number): void;
}

/** Defaults of {@link WalOptions}. */
export const WAL_DEFAULTS = Object.freeze({
  segmentSizeBytes: 64 * 1024 * 1024,
  maxRecordSizeBytes: 64 * 1024 * 1024,
  maxBatchBytes: 16 * 1024 * 1024,
  maxPendingBytes: 256 * 1024 * 1024,
});

/** Counters of the writer's work, for benchmarks, tests and metrics. */
export interface WalStats {
  /** Appends accepted. */
  appends: number;
  /** Writes issued (one per batch). */
  batches: number;
  /** fdatasync/fsync calls on segments (rollovers included). */
  syncs: number;
  /** Record bytes written. */
  bytesWritten: number;
  /** Segments created. */
  segmentsCreated: number;
}

interface PendingAppend {
  readonly bytes: Uint8Array;
  readonly sync: boolean;
  readonly maxIndex: number;
  /** The last hard state and entry index among the records, if any. */
  readonly hardState: HardState | undefined;
  readonly lastIndex: number | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** An open write-ahead log: recover with {@link Wal.open}, then append. */
export class Wal {
  readonly stats: WalStats = {
    appends: 0,
    batches: 0,
    syncs: 0,
    bytesWritten: 0,
    segmentsCreated: 0,
  };
  private readonly segmentSizeBytes: number;
  private readonly maxRecordSizeBytes: number;
  private readonly maxBatchBytes: number;
  private readonly maxPendingBytes: number;
  private readonly syncObserver: SyncObserver | undefined;
  private readonly sleep: (delayMs: number) => Promise<void>;
  private readonly onStorageFull: ((error: StorageFullError | undefined) => void) | undefined;
  /** Set while a write waits for space on a full disk. */
  private fullError: StorageFullError | undefined;
  private queue: PendingAppend[] = [];
  /** Queued appends with `sync`: while there are none, durable segments hold the queue back. */
  private queuedSyncs = 0;
  private pendingBytes = 0;
  private flushing = false;
  private failure: Error | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** The segment appends go to, with its handle and end. */
  private active!: { info: SegmentInfo; handle: FileHandle; offsetBytes: number; dirty: boolean };
  /** The hard state last written; each new segment starts with it. */
  private hardState: HardState | undefined;
  /** The last index written (names new segments). */
  private lastIndex = 0;
  /**
   * The last entry or snapshot-mark index appended, in call order (undefined while the records
   * do not say), and the last snapshot mark's index: what replay will check the next entry
   * against (no gap, never behind the mark), so `append` asserts it first.
   */
  private appendedLastIndex: number | undefined;
  private appendedMarkIndex = 0;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly segments: SegmentInfo[],
    options: WalOptions,
  ) {
    this.segmentSizeBytes = options.segmentSizeBytes ?? WAL_DEFAULTS.segmentSizeBytes;
    this.maxRecordSizeBytes = options.maxRecordSizeBytes ?? WAL_DEFAULTS.maxRecordSizeBytes;
    this.maxBatchBytes = options.maxBatchBytes ?? WAL_DEFAULTS.maxBatchBytes;
    this.maxPendingBytes = options.maxPendingBytes ?? WAL_DEFAULTS.maxPendingBytes;
    this.syncObserver = options.syncObserver;
    this.sleep = options.sleep ?? timerSleep;
    this.onStorageFull = options.onStorageFull;
    for (const [name, value] of Object.entries({
      segmentSizeBytes: this.segmentSizeBytes,
      maxRecordSizeBytes: this.maxRecordSizeBytes,
      maxBatchBytes: this.maxBatchBytes,
      maxPendingBytes: this.maxPendingBytes,
    })) {
      invariant(Number.isSafeInteger(value) && value > 0, `WAL option ${name} must be positive`);
    }
    invariant(
      this.segmentSizeBytes >= SEGMENT_HEADER_BYTES * 2,
      `segmentSizeBytes must be at least ${SEGMENT_HEADER_BYTES * 2}`,
    );
  }

  /**
   * Recovers the log in `dir` (which must exist) and opens it for appending; creates the first
   * segment of a new log.
   * @throws StorageCorruptError if recovery finds damage it must not repair.
   */
  static async open(
    fs: FileSystem,
    dir: string,
    options: WalOptions = {},
  ): Promise<{ wal: Wal; recovered: RecoveredWal }> {
    const recovered = await recoverWal(fs, dir);
    const wal = new Wal(fs, dir, recovered.segments, options);
    wal.hardState = recovered.log.hardState;
    const entries = recovered.log.entries;
    wal.lastIndex = entries[entries.length - 1]?.index ?? recovered.log.snapshotMark?.index ?? 0;
    wal.appendedLastIndex = entries[entries.length - 1]?.index ?? recovered.log.snapshotMark?.index;
    wal.appendedMarkIndex = recovered.log.snapshotMark?.index ?? 0;
    const last = recovered.segments[recovered.segments.length - 1];
    if (last === undefined) {
      await wal.createSegment(1);
    } else {
      const handle = await fs.open(joinPath(dir, last.name), "readWrite", { durableWrites: true });
      wal.active = {
        info: last,
        handle,
        offsetBytes: recovered.appendOffsetBytes ?? SEGMENT_HEADER_BYTES,
        dirty: false,
      };
    }
    return { wal, recovered };
  }

  /**
   * Appends records after every earlier append. With `sync` the promise resolves once they are
   * durable (covered by an fdatasync or a durable write); without, once they are written (in the
   * page cache), or at once on durable segments, which write them with the next synced append
   * (see the module comment). Any number of callers may append concurrently: they share writes
   * and fsyncs.
   * @throws TooLargeError for a record over `maxRecordSizeBytes` (nothing is appended).
   * @throws OverloadedError if `maxPendingBytes` are already waiting.
   * @throws UnavailableError if the log is closed or a write failed (the log is then unusable:
   *   after a failed fsync nothing is known about what reached the disk).
   * @throws InternalError (nothing appended) for records replay would refuse as corruption: an
   *   entry after a gap or behind the last snapshot mark, or a record that {@link encodeRecord}
   *   refuses. The caller's bug, never the disk's.
   */
  append(records: readonly WalRecord[], options: { readonly sync: boolean }): Promise<void> {
    try {
      this.checkUsable();
      let sizeBytes = 0;
      for (const record of records) {
        const recordBytes = recordSizeBytes(record);
        if (recordBytes > this.maxRecordSizeBytes) {
          throw new TooLargeError(
            `WAL record of ${recordBytes} bytes exceeds the limit of ${this.maxRecordSizeBytes} bytes`,
          );
        }
        sizeBytes += recordBytes;
      }
      if (this.pendingBytes + sizeBytes > this.maxPendingBytes && this.pendingBytes > 0) {
        throw new OverloadedError(
          `${this.pendingBytes} bytes are already waiting to be written to the WAL; back off`,
        );
      }
      const order = this.orderAfter(records);
      const bytes = new Uint8Array(sizeBytes);
      let offset = 0;
      let maxIndex = 0;
      let hardState: HardState | undefined;
      let lastIndex: number | undefined;
      for (const record of records) {
        offset = encodeRecord(record, bytes, offset);
        maxIndex = Math.max(maxIndex, recordMaxIndex(record));
        if (record.type === RecordType.HardState) hardState = record.hardState;
        else if (record.type === RecordType.Entry) lastIndex = record.entry.index;
        else lastIndex = record.index;
      }
      // The sizes summed first and the bytes encoded must agree, or records would overlap.
      invariant(offset === sizeBytes, "encoded WAL records must fill exactly the bytes sized");
      this.appendedLastIndex = order.lastIndex;
      this.appendedMarkIndex = order.markIndex;
      this.stats.appends++;
      this.pendingBytes += sizeBytes;
      const held = !options.sync && this.active.handle.durableWrites;
      if (options.sync) this.queuedSyncs++;
      const written = new Promise<void>((resolve, reject) => {
        this.queue.push({
          bytes,
          sync: options.sync,
          maxIndex,
          hardState,
          lastIndex,
          resolve,
          reject,
        });
        this.scheduleFlush();
      });
      if (!held) return written;
      // Held for the next synced write (its failure is that append's to report).
      written.catch(() => undefined);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /**
   * Asserts, in call order, what replay checks on read (wal-replay.ts): entries follow the last
   * one without a gap and never reach behind the last snapshot mark. Returns the positions after
   * `records`, for the caller to keep once they are accepted. O(records).
   */
  private orderAfter(records: readonly WalRecord[]): {
    lastIndex: number | undefined;
    markIndex: number;
  } {
    let last = this.appendedLastIndex;
    let mark = this.appendedMarkIndex;
    for (const record of records) {
      if (record.type === RecordType.Entry) {
        const index = record.entry.index;
        invariant(
          (last === undefined || index <= last + 1) && index > mark,
          () =>
            `WAL entry ${index} would not replay after entry ${last ?? "(none)"} and snapshot mark ${mark}`,
        );
        last = index;
      } else if (record.type === RecordType.Snapshot) {
        mark = record.index;
        last = record.index;
      }
    }
    return { lastIndex: last, markIndex: mark };
  }

  private checkUsable(): void {
    if (this.failure !== undefined) {
      throw new UnavailableError(`the WAL failed and must be reopened: ${this.failure.message}`, {
        cause: this.failure,
      });
    }
    if (this.closed) throw new UnavailableError("the WAL is closed");
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    // Start on a later microtask, so appends made in this turn of the event loop join the batch.
    // Never rejects: flushLoop rejects the appends of a batch that fails, and stops there.
    void Promise.resolve().then(() => this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        // Unsynced appends alone wait for a synced one on durable segments (module comment).
        if (this.queuedSyncs === 0 && this.active.handle.durableWrites && !this.closed) break;
        const batch = this.takeBatch();
        try {
          await retryWhileFull(() => this.writeBatch(batch), {
            sleep: this.sleep,
            giveUp: () => this.closed,
            onChange: (error) => {
              this.fullError = error;
              this.onStorageFull?.(error);
            },
          });
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          this.failure = failure;
          for (const item of [...batch, ...this.queue]) item.reject(failure);
          this.queue = [];
          this.queuedSyncs = 0;
          this.pendingBytes = 0;
        }
      }
    } finally {
      this.flushing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** The next appends to write together: at least one, at most `maxBatchBytes` beyond it. */
  private takeBatch(): PendingAppend[] {
    let sizeBytes = 0;
    let count = 0;
    for (const item of this.queue) {
      if (count > 0 && sizeBytes + item.bytes.byteLength > this.maxBatchBytes) break;
      sizeBytes += item.bytes.byteLength;
      count++;
    }
    const batch = this.queue.slice(0, count);
    this.queue = this.queue.slice(count);
    for (const item of batch) if (item.sync) this.queuedSyncs--;
    return batch;
  }

  private async writeBatch(batch: readonly PendingAppend[]): Promise<void> {
    let sizeBytes = 0;
    let maxIndex = 0;
    let sync = false;
    for (const item of batch) {
      sizeBytes += item.bytes.byteLength;
      maxIndex = Math.max(maxIndex, item.maxIndex);
      sync ||= item.sync;
    }
    const hasRecords = this.active.offsetBytes > SEGMENT_HEADER_BYTES;
    if (hasRecords && this.active.offsetBytes + sizeBytes > this.segmentSizeBytes) {
      await this.rollSegment();
    }
    let bytes: Uint8Array;
    if (batch.length === 1) {
      bytes = (batch[0] as PendingAppend).bytes;
    } else {
      bytes = new Uint8Array(sizeBytes);
      let offset = 0;
      for (const item of batch) {
        bytes.set(item.bytes, offset);
        offset += item.bytes.byteLength;
      }
    }
    const active = this.active;
    const durable = active.handle.durableWrites;
    const observer = sync && durable ? this.syncObserver : undefined;
    const started = observer?.now() ?? 0;
    try {
      // On a full disk a part of `bytes` may land past the durable end before the error: the
      // retry writes the whole batch again at the same offset, and a crash before it leaves a
      // torn tail that recovery cuts.
      await active.handle.write(bytes, active.offsetBytes);
    } catch (error) {
      // A durable write that fails may have failed its flush: never retried but on a full disk
      // (retry-while-full.ts), as a failed fdatasync.
      throw storageIoError(error, "write", joinPath(this.dir, active.info.name));
    }
    if (observer !== undefined) observer.observe(observer.now() - started);
    active.offsetBytes += sizeBytes;
    active.dirty = !durable;
    active.info.maxIndex = Math.max(active.info.maxIndex, maxIndex);
    for (const item of batch) {
      // Only what is written may seed the next segment: a later hard state could commit
      // entries that a crash still loses.
      if (item.hardState !== undefined) this.hardState = item.hardState;
      if (item.lastIndex !== undefined) this.lastIndex = item.lastIndex;
    }
    this.stats.batches++;
    this.stats.bytesWritten += sizeBytes;
    this.pendingBytes -= sizeBytes;
    invariant(this.pendingBytes >= 0, "more WAL bytes written than were pending");
    if (sync) {
      if (!durable) await this.datasync(active.handle, active.info.name);
      active.dirty = false;
      this.stats.syncs++;
    }
    for (const item of batch) item.resolve();
  }

  /** fdatasync of a segment, timed for the observer if there is one. */
  private async datasync(handle: { datasync(): Promise<void> }, name: string): Promise<void> {
    const observer = this.syncObserver;
    const started = observer?.now() ?? 0;
    try {
      await handle.datasync();
    } catch (error) {
      // Never retried: the kernel may have dropped the pages it could not write.
      throw storageIoError(error, "fsync", joinPath(this.dir, name));
    }
    if (observer !== undefined) observer.observe(observer.now() - started);
  }

  /** Makes the active segment durable, then starts the next one. */
  private async rollSegment(): Promise<void> {
    const previous = this.active;
    if (previous.dirty) {
      // Records of the new segment must never be durable while earlier ones are not.
      await this.datasync(previous.handle, previous.info.name);
      this.stats.syncs++;
    }
    await this.createSegment(previous.info.id.sequence + 1);
    await previous.handle.close();
  }

  private async createSegment(sequence: number): Promise<void> {
    // Recovery calls a hole in the sequence a missing segment: the writer never leaves one.
    const previous = this.segments[this.segments.length - 1];
    invariant(
      previous === undefined || sequence === previous.id.sequence + 1,
      () => `segment ${sequence} does not follow segment ${previous?.id.sequence}`,
    );
    const id = { sequence, firstIndex: this.lastIndex + 1 };
    const name = segmentFileName(id);
    const path = joinPath(this.dir, name);
    const header = encodeSegmentHeader(id);
    const hardState = this.hardState;
    // The current hard state goes first, so removing older segments never loses it.
    const stateBytes =
      hardState === undefined
        ? new Uint8Array(0)
        : new Uint8Array(recordSizeBytes({ type: RecordType.HardState, hardState }));
    if (hardState !== undefined)
      encodeRecord({ type: RecordType.HardState, hardState }, stateBytes, 0);
    const content = new Uint8Array(header.byteLength + stateBytes.byteLength);
    content.set(header, 0);
    content.set(stateBytes, header.byteLength);
    let handle: FileHandle;
    try {
      handle = await this.fs.open(path, "createExclusive", { durableWrites: true });
    } catch (error) {
      throw storageIoError(error, "create", path);
    }
    try {
      await handle.write(content, 0);
    } catch (error) {
      // Remove the half-made segment, so a retry on a full disk can create it again.
      await handle.close().catch(() => undefined);
      await this.fs.remove(path).catch(() => undefined);
      throw storageIoError(error, "write", path);
    }
    try {
      // A durable write already flushed the content and the size needed to read it back.
      if (!handle.durableWrites) await handle.sync();
      await this.fs.syncDirectory(this.dir);
    } catch (error) {
      throw storageIoError(error, "fsync", path);
    }
    this.stats.syncs++;
    this.stats.segmentsCreated++;
    const info: SegmentInfo = { id, name, maxIndex: 0 };
    this.segments.push(info);
    this.active = { info, handle, offsetBytes: content.byteLength, dirty: false };
  }

  /**
   * Deletes the oldest segments whose records all concern indexes ≤ `index` (never the active
   * one): once a snapshot covers `index` they are not needed to rebuild the log. Returns how
   * many were removed.
   */
  async removeSegmentsThrough(index: number): Promise<number> {
    this.checkUsable();
    let count = 0;
    while (
      count < this.segments.length - 1 &&
      (this.segments[count] as SegmentInfo).maxIndex <= index
    ) {
      count++;
    }
    if (count === 0) return 0;
    // Oldest first, so a crash part way leaves a contiguous run of segments.
    const removed = this.segments.splice(0, count);
    for (const segment of removed) await this.fs.remove(joinPath(this.dir, segment.name));
    await this.fs.syncDirectory(this.dir);
    return count;
  }

  /** The error of the write waiting for space on a full disk, or undefined if none waits. */
  storageFull(): StorageFullError | undefined {
    return this.fullError;
  }

  /** The segments on disk, oldest first (copies). */
  segmentInfos(): SegmentInfo[] {
    return this.segments.map((segment) => ({ ...segment }));
  }

  /**
   * Waits for every append so far to be written (held unsynced ones included), then closes the
   * active segment. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.queue.length > 0 && this.failure === undefined) this.scheduleFlush();
    while (this.flushing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.active.handle.close();
  }
}
