/**
 * The simulator's second disk: each node runs the real write-ahead log ({@link WalLogStore})
 * over its own {@link MemoryFileSystem}, so the storage code that ships is the code the
 * simulator crashes. Every file-system operation completes as a scheduler event (fsyncs after a
 * random latency), so an open or a write is a deterministic chain of events.
 *
 * A crash is a power cut on the node's file system: writes not made durable are lost, or (with
 * torn writes) a per-file prefix of them survives with the next write cut short. A `bitflip`
 * crash also flips one bit of a durable byte (in a segment, but never in the last record of the
 * last segment, whose damage is indistinguishable from a torn write, or in a snapshot file)
 * before the next open. The restart then either recovers (cutting a torn tail) or fails loudly
 * with `StorageCorruptError`; the cluster decides what each outcome means.
 *
 * A crashed incarnation can do nothing more to the disk: its in-flight operations never
 * complete, its later ones never start, and its store's promises never settle.
 */
import type { Random } from "../common/random.js";
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.js";
import type { FileHandle, FileSystem, OpenMode, OpenOptions } from "../storage/fs.js";
import type { LogStore, LogUpdate, SnapshotWriter } from "../storage/log-store.js";
import { MemoryFileSystem, type MemoryFsOperation } from "../storage/memory-fs.js";
import { parseSnapshotFileName } from "../storage/snapshot-file.js";
import { WalLogStore } from "../storage/wal-log-store.js";
import { parseSegmentFileName, scanSegment } from "../storage/wal-segment.js";
import type { DiskOptions } from "./disk.js";
import { between } from "./rng.js";
import type { Scheduler, SimClock } from "./scheduler.js";

/** The data directory of every simulated node (each has its own file system). */
export const WAL_SIM_DIR = "/data";
/** Small segments, so that rollover and segment compaction happen in short runs. */
export const WAL_SIM_SEGMENT_BYTES = 4096;

/** What the WAL disk knows of a node's storage faults, for reports. */
export interface WalDiskStats {
  /** Bits flipped into this node's durable files. */
  bitFlips: number;
  /** Opens after a crash that succeeded. */
  recoveries: number;
  /** Of those, opens that cut a torn tail. */
  truncatedTails: number;
}

/** A bit flipped into a durable file. */
export interface BitFlip {
  readonly file: string;
  readonly offsetBytes: number;
  readonly bit: number;
}

function hang<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

/**
 * The file system one incarnation sees: the node's shared {@link MemoryFileSystem}, until the
 * incarnation dies; from then on every call (and every call already in flight) never settles.
 */
class IncarnationFileSystem implements FileSystem {
  dead = false;

  constructor(
    private readonly inner: FileSystem,
    private readonly skipDatasync: boolean,
  ) {}

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dead) return hang<T>();
    const value = await fn();
    if (this.dead) return hang<T>();
    return value;
  }

  open(path: string, mode: OpenMode, options: OpenOptions = {}): Promise<FileHandle> {
    // PLANTED BUG (walSkipsDatasync): a durable write is acknowledged as one but is not flushed.
    const durableWrites = options.durableWrites === true && mode !== "read";
    const inner = this.skipDatasync ? {} : options;
    return this.guard(async () =>
      this.wrap(await this.inner.open(path, mode, inner), durableWrites),
    );
  }

  private wrap(handle: FileHandle, durableWrites: boolean): FileHandle {
    return {
      durableWrites,
      read: (buffer, positionBytes) => this.guard(() => handle.read(buffer, positionBytes)),
      write: (data, positionBytes) => this.guard(() => handle.write(data, positionBytes)),
      truncate: (sizeBytes) => this.guard(() => handle.truncate(sizeBytes)),
      sync: () => this.guard(() => handle.sync()),
      // PLANTED BUG (walSkipsDatasync): the fdatasync is acknowledged but never reaches the disk.
      datasync: () => this.guard(() => (this.skipDatasync ? Promise.resolve() : handle.datasync())),
      sizeBytes: () => this.guard(() => handle.sizeBytes()),
      close: () => this.guard(() => handle.close()),
    };
  }

  readFile(path: string): Promise<Uint8Array> {
    return this.guard(() => this.inner.readFile(path));
  }
  rename(from: string, to: string): Promise<void> {
    return this.guard(() => this.inner.rename(from, to));
  }
  remove(path: string): Promise<void> {
    return this.guard(() => this.inner.remove(path));
  }
  list(dir: string): Promise<string[]> {
    return this.guard(() => this.inner.list(dir));
  }
  mkdir(dir: string): Promise<void> {
    return this.guard(() => this.inner.mkdir(dir));
  }
  syncDirectory(dir: string): Promise<void> {
    return this.guard(() => this.inner.syncDirectory(dir));
  }
  exists(path: string): Promise<boolean> {
    return this.guard(() => this.inner.exists(path));
  }
  stat(path: string): Promise<{ readonly sizeBytes: number }> {
    return this.guard(() => this.inner.stat(path));
  }
  processId(): number {
    return this.inner.processId();
  }
  isProcessAlive(pid: number): boolean {
    return this.inner.isProcessAlive(pid);
  }
}

/**
 * The {@link LogStore} one incarnation hands its node: the real {@link WalLogStore}, whose
 * completions reach the node through its clock (held while paused) and never once it crashed.
 */
export class WalSimLogStore implements LogStore {
  private dead = false;

  constructor(
    readonly inner: WalLogStore,
    private readonly clock: SimClock,
  ) {}

  /** The incarnation crashed: nothing it started settles any more. */
  kill(): void {
    this.dead = true;
  }

  private deliver<T>(promise: Promise<T>): Promise<T> {
    if (this.dead) return hang<T>();
    return new Promise<T>((resolve, reject) => {
      promise.then(
        (value) => {
          if (!this.dead) this.clock.fire(() => resolve(value));
        },
        (error: unknown) => {
          if (!this.dead) this.clock.fire(() => reject(error as Error));
        },
      );
    });
  }

  /** @inheritdoc */
  initialState(): { hardState: HardState; confState: ConfState } {
    return this.inner.initialState();
  }
  /** @inheritdoc */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    return this.inner.entries(lo, hi, maxSizeBytes);
  }
  /** @inheritdoc */
  term(index: number): number {
    return this.inner.term(index);
  }
  /** @inheritdoc */
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  /** @inheritdoc */
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  /** @inheritdoc */
  snapshot(): Snapshot {
    return this.inner.snapshot();
  }
  /** @inheritdoc */
  save(update: LogUpdate, options: { readonly sync: boolean }): Promise<void> {
    if (this.dead) return hang();
    return this.deliver(this.inner.save(update, options));
  }
  /** @inheritdoc */
  saveSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    if (this.dead) return hang();
    return this.deliver(this.inner.saveSnapshot(index, confState, data));
  }
  /** @inheritdoc */
  async beginSnapshot(
    index: number,
    confState: ConfState,
    sizeBytes: number,
  ): Promise<SnapshotWriter> {
    if (this.dead) return hang();
    const writer = await this.deliver(this.inner.beginSnapshot(index, confState, sizeBytes));
    return {
      write: (piece) => (this.dead ? hang() : this.deliver(writer.write(piece))),
      commit: () => (this.dead ? hang() : this.deliver(writer.commit())),
      abort: () => (this.dead ? hang() : this.deliver(writer.abort())),
    };
  }
  /** @inheritdoc */
  compact(index: number): Promise<void> {
    if (this.dead) return hang();
    return this.deliver(this.inner.compact(index));
  }
  /** @inheritdoc */
  close(): Promise<void> {
    if (this.dead) return hang();
    return this.deliver(this.inner.close());
  }
}

/** Options of a {@link WalDisk}. */
export interface WalDiskOptions extends DiskOptions {
  /** PLANTED BUG: every fdatasync is acknowledged without making anything durable. */
  readonly skipDatasync?: boolean;
}

/** One node's WAL disk: a {@link MemoryFileSystem} that outlives the node's incarnations. */
export class WalDisk {
  readonly fs: MemoryFileSystem;
  readonly stats: WalDiskStats = { bitFlips: 0, recoveries: 0, truncatedTails: 0 };
  /** Every bit flipped into this disk, in order. */
  readonly flips: BitFlip[] = [];
  /** Bumped by every crash: file-system operations started before it never complete. */
  private epoch = 0;
  private incarnationFs: IncarnationFileSystem | undefined;
  private current: WalSimLogStore | undefined;
  private opened = 0;
  private flipPending = false;
  /** A crash waiting for the next flush to start (see {@link crashDuringNextFlush}). */
  private armedCrash: (() => void) | undefined;
  private knownFirstIndex = 1;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly options: WalDiskOptions,
    /** The configuration of a founding member; undefined for a node that joins later. */
    private readonly initialConfState: ConfState | undefined,
  ) {
    this.fs = new MemoryFileSystem({ delay: (operation) => this.delay(operation) });
  }

  private delay(operation: MemoryFsOperation): Promise<void> {
    const epoch = this.epoch;
    const isSync =
      operation === "sync" || operation === "datasync" || operation === "syncDirectory";
    const latencyMs = isSync
      ? between(this.random, this.options.minSyncLatencyMs, this.options.maxSyncLatencyMs)
      : 0;
    const crash = isSync ? this.armedCrash : undefined;
    if (crash !== undefined) {
      this.armedCrash = undefined;
      // The power goes while the flush runs: what it was writing may be torn.
      this.scheduler.schedule(between(this.random, 0, latencyMs), () => {
        if (epoch === this.epoch) crash();
      });
    }
    return new Promise<void>((resolve) => {
      this.scheduler.schedule(latencyMs, () => {
        if (epoch === this.epoch) resolve();
      });
    });
  }

  /**
   * Calls `crash` (which crashes the node) part way through the next flush of this disk (a
   * durable write's or an fsync), so that what it writes can be torn; or after `withinMs` if no
   * flush starts by then. Crashes at random instants rarely fall inside a flush (the WAL holds
   * nothing unsynced in the page cache), and torn tails would go untested.
   */
  crashDuringNextFlush(crash: () => void, withinMs: number): void {
    let done = false;
    const once = (): void => {
      if (done) return;
      done = true;
      this.armedCrash = undefined;
      crash();
    };
    this.armedCrash = once;
    this.scheduler.schedule(withinMs, once);
  }

  /** The store of the running incarnation, if any. */
  get store(): WalSimLogStore | undefined {
    return this.current;
  }

  /** True once a bit was flipped into this disk (a later StorageCorrupt is then expected). */
  get corrupted(): boolean {
    return this.stats.bitFlips > 0;
  }

  /**
   * The first index of the durable log, as far as the disk knows: a snapshot file is durable
   * before the store's first index moves past it, so the running store's value is a lower bound.
   */
  durableFirstIndex(): number {
    const first = this.current?.firstIndex();
    if (first !== undefined) this.knownFirstIndex = Math.max(this.knownFirstIndex, first);
    return this.knownFirstIndex;
  }

  /**
   * Opens the disk for a new incarnation: flips a pending bit, then opens the WAL (recovering
   * it). Resolves with the store, or undefined if the incarnation crashed while it opened.
   * @throws StorageCorruptError (and whatever else the WAL's open throws).
   */
  async open(clock: SimClock): Promise<WalSimLogStore | undefined> {
    const epoch = this.epoch;
    const fs = new IncarnationFileSystem(this.fs, this.options.skipDatasync === true);
    this.incarnationFs = fs;
    if (this.flipPending) {
      this.flipPending = false;
      await this.flipRandomBit();
      if (epoch !== this.epoch) return undefined;
    }
    const afterCrash = this.opened++ > 0;
    const inner = await WalLogStore.open(WAL_SIM_DIR, {
      fs,
      segmentSizeBytes: WAL_SIM_SEGMENT_BYTES,
      ...(this.initialConfState === undefined ? {} : { confState: this.initialConfState }),
    });
    if (epoch !== this.epoch) return undefined;
    if (afterCrash) {
      this.stats.recoveries++;
      if (inner.recovery.truncated !== undefined) this.stats.truncatedTails++;
    }
    const store = new WalSimLogStore(inner, clock);
    this.current = store;
    this.knownFirstIndex = Math.max(this.knownFirstIndex, store.firstIndex());
    return store;
  }

  /**
   * The node crashed (a power cut): its store and file-system calls go dead, unsynced writes
   * are lost or (with torn writes) partly kept; with `flipBit` a bit of a durable byte flips
   * before the next open.
   */
  crash(options: { readonly flipBit?: boolean } = {}): void {
    if (this.current !== undefined) this.durableFirstIndex();
    this.current?.kill();
    this.current = undefined;
    if (this.incarnationFs !== undefined) this.incarnationFs.dead = true;
    this.incarnationFs = undefined;
    this.epoch++;
    this.fs.crash(
      this.options.tornWrites
        ? { unsyncedWrites: "tornPrefix", random: this.random }
        : { unsyncedWrites: "lose" },
    );
    if (options.flipBit === true) this.flipPending = true;
  }

  /**
   * Flips one bit of a durable byte that recovery must not mistake for a torn write: anywhere
   * in a snapshot file or a segment, except from the last record of the last segment on.
   */
  private async flipRandomBit(): Promise<void> {
    const names = (await this.fs.list(WAL_SIM_DIR).catch(() => [] as string[])).sort();
    const segments = names
      .map((name) => ({ name, id: parseSegmentFileName(name) }))
      .filter((s) => s.id !== undefined)
      .sort((a, b) => (a.id?.sequence ?? 0) - (b.id?.sequence ?? 0));
    const ranges: { file: string; endBytes: number }[] = [];
    for (const name of names) {
      if (parseSnapshotFileName(name) === undefined) continue;
      const file = `${WAL_SIM_DIR}/${name}`;
      ranges.push({ file, endBytes: this.fs.contentOf(file).byteLength });
    }
    segments.forEach(({ name, id }, i) => {
      const file = `${WAL_SIM_DIR}/${name}`;
      const bytes = this.fs.contentOf(file);
      if (i < segments.length - 1 || id === undefined) {
        ranges.push({ file, endBytes: bytes.byteLength });
        return;
      }
      try {
        const scan = scanSegment(file, bytes, { id, isLast: true });
        const last = scan.records[scan.records.length - 1];
        if (last !== undefined) ranges.push({ file, endBytes: last.offsetBytes });
      } catch {
        // Already damaged: leave it alone.
      }
    });
    const total = ranges.reduce((sum, r) => sum + r.endBytes, 0);
    if (total === 0) return;
    let offset = this.random.int(total);
    for (const range of ranges) {
      if (offset < range.endBytes) {
        const bit = this.random.int(8);
        this.fs.flipBit(range.file, offset, bit);
        this.flips.push({ file: range.file, offsetBytes: offset, bit });
        this.stats.bitFlips++;
        return;
      }
      offset -= range.endBytes;
    }
  }
}
