/**
 * The simulator's disk: a {@link LogStore} per node incarnation over a durable image that
 * survives crashes. Writes reach the "page cache" (what the running node reads) at once and the
 * durable image only when an fsync completes, after a random latency. Writes saved without
 * `sync` stay volatile until a later synced write. A crash loses every write that was not yet
 * durable, or, with torn writes on, keeps an ordered prefix of them with the last one cut short.
 *
 * The durable image is kept as the ordered list of durable operations and a restarted node
 * rebuilds its view by replaying it into a {@link MemoryStorage}. The real segmented WAL will
 * arrive with a file-system port; it can replace this class by running on a simulated file
 * system that implements the same crash rules.
 */
import { invariant } from "../common/assert.js";
import type { Random } from "../common/random.js";
import { MemoryStorage, SnapshotOutOfDateError } from "../raft/storage.js";
import type { ConfState, Snapshot } from "../raft/types.js";
import type { LogStore, LogUpdate } from "../storage/log-store.js";
import { MemoryBackedReads } from "../storage/memory-backed-reads.js";
import { between, chance } from "./rng.js";
import type { Scheduler, SimClock } from "./scheduler.js";

/** How the simulated disk behaves. */
export interface DiskOptions {
  /** Smallest fsync latency, in ms. */
  readonly minSyncLatencyMs: number;
  /** Largest fsync latency, in ms. */
  readonly maxSyncLatencyMs: number;
  /** On a crash, keep a random prefix of the writes that were not yet durable, the last torn. */
  readonly tornWrites: boolean;
  /**
   * PLANTED BUG: a synced write is acknowledged at once, but becomes durable only after the
   * fsync latency; a crash in between loses an acknowledged write.
   */
  readonly ackBeforeDurable?: boolean;
}

/** Default disk: 0–3 ms fsyncs, torn writes on. */
export const DEFAULT_DISK: DiskOptions = Object.freeze({
  minSyncLatencyMs: 0,
  maxSyncLatencyMs: 3,
  tornWrites: true,
});

/** One durable operation, in the order the node issued it. */
type DiskOperation =
  | { readonly kind: "save"; readonly update: LogUpdate }
  | {
      readonly kind: "snapshot";
      readonly index: number;
      readonly confState: ConfState;
      readonly data: Uint8Array;
    }
  | { readonly kind: "compact"; readonly index: number };

interface PendingOperation {
  readonly sequence: number;
  readonly operation: DiskOperation;
}

/** What a crash did to the writes that were not durable. */
export interface CrashOutcome {
  readonly lostWrites: number;
  readonly keptWrites: number;
  readonly tornWrite: boolean;
}

function applyOperation(storage: MemoryStorage, operation: DiskOperation): Snapshot | undefined {
  switch (operation.kind) {
    case "save": {
      const { update } = operation;
      if (update.snapshot !== undefined) {
        try {
          storage.applySnapshot(update.snapshot);
        } catch (error) {
          if (!(error instanceof SnapshotOutOfDateError)) throw error;
        }
      }
      if (update.entries.length > 0) storage.append(update.entries);
      if (update.hardState !== undefined) storage.setHardState(update.hardState);
      return undefined;
    }
    case "snapshot":
      try {
        return storage.createSnapshot(operation.index, operation.confState, operation.data);
      } catch (error) {
        if (!(error instanceof SnapshotOutOfDateError)) throw error;
        return storage.snapshot();
      }
    case "compact":
      if (operation.index > storage.firstIndex()) storage.compact(operation.index);
      return undefined;
  }
}

/**
 * One node's disk. {@link open} gives the store of a new incarnation, built from the durable
 * image; {@link crash} applies the crash rules to the writes that were in flight.
 */
export class SimDisk {
  private readonly durable: DiskOperation[] = [];
  private pending: PendingOperation[] = [];
  private sequence = 0;
  private incarnation = 0;
  private current: SimLogStore | undefined;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly options: DiskOptions,
    /** The configuration of a founding member; undefined for a node that joins later. */
    private readonly initialConfState: ConfState | undefined,
  ) {}

  /** Builds the durable image: what a restarted node finds on disk. */
  durableImage(): MemoryStorage {
    const storage = new MemoryStorage(
      this.initialConfState === undefined ? {} : { confState: this.initialConfState },
    );
    for (const operation of this.durable) applyOperation(storage, operation);
    return storage;
  }

  /** The first index of the durable log (what a restarted node would start from). */
  durableFirstIndex(): number {
    return this.durableImage().firstIndex();
  }

  /**
   * Opens the disk for a new incarnation whose completions are delivered through `clock`.
   * @throws InternalError if the previous incarnation is still open (crash it first).
   */
  open(clock: SimClock): SimLogStore {
    invariant(this.current === undefined, "disk is already open; crash the node first");
    const incarnation = ++this.incarnation;
    const store = new SimLogStore(this.durableImage(), {
      clock,
      write: (operation, sync) => this.write(incarnation, clock, operation, sync),
    });
    this.current = store;
    return store;
  }

  /** The store of the running incarnation, if any. */
  get store(): SimLogStore | undefined {
    return this.current;
  }

  /** Writes not yet durable. */
  get pendingWrites(): number {
    return this.pending.length;
  }

  /**
   * The node crashed: its store goes dead and the writes that were not durable are lost, or
   * (with torn writes) an ordered prefix of them survives, the last possibly cut short.
   */
  crash(): CrashOutcome {
    this.current?.kill();
    this.current = undefined;
    this.incarnation++;
    const pending = this.pending;
    this.pending = [];
    if (!this.options.tornWrites || pending.length === 0) {
      return { lostWrites: pending.length, keptWrites: 0, tornWrite: false };
    }
    const kept = this.random.int(pending.length + 1);
    for (const p of pending.slice(0, kept)) this.durable.push(p.operation);
    let tornWrite = false;
    const next = pending[kept]?.operation;
    if (
      next?.kind === "save" &&
      next.update.snapshot === undefined &&
      next.update.entries.length > 1 &&
      chance(this.random, 0.5)
    ) {
      const prefix = between(this.random, 1, next.update.entries.length - 1);
      this.durable.push({
        kind: "save",
        update: { entries: next.update.entries.slice(0, prefix) },
      });
      tornWrite = true;
    }
    return { lostWrites: pending.length - kept, keptWrites: kept, tornWrite };
  }

  private write(
    incarnation: number,
    clock: SimClock,
    operation: DiskOperation,
    sync: boolean,
  ): Promise<void> {
    if (incarnation !== this.incarnation) return new Promise<void>(() => undefined);
    const sequence = ++this.sequence;
    this.pending.push({ sequence, operation });
    if (!sync) return Promise.resolve();
    const latencyMs = between(
      this.random,
      this.options.minSyncLatencyMs,
      this.options.maxSyncLatencyMs,
    );
    if (this.options.ackBeforeDurable === true) {
      // The planted bug: acknowledged now, durable only later.
      this.scheduler.schedule(latencyMs * 20 + 20, () => {
        if (incarnation === this.incarnation) this.makeDurable(sequence);
      });
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.scheduler.schedule(latencyMs, () => {
        if (incarnation !== this.incarnation) return;
        this.makeDurable(sequence);
        clock.fire(resolve);
      });
    });
  }

  private makeDurable(upTo: number): void {
    while (this.pending.length > 0 && (this.pending[0]?.sequence ?? Infinity) <= upTo) {
      const p = this.pending.shift() as PendingOperation;
      this.durable.push(p.operation);
    }
  }
}

/**
 * The {@link LogStore} of one incarnation: reads see every write issued (the page cache);
 * writes resolve once durable (synced ones) by the disk's rules. Once the node has crashed,
 * its writes never resolve and change nothing.
 */
export class SimLogStore extends MemoryBackedReads implements LogStore {
  private dead = false;
  private closed = false;

  /** Reads answer from `view`, the page cache; writes go through `io`. Throws nothing. */
  constructor(
    view: MemoryStorage,
    private readonly io: {
      readonly clock: SimClock;
      readonly write: (operation: DiskOperation, sync: boolean) => Promise<void>;
    },
  ) {
    super(view);
  }

  /** The incarnation crashed: further writes hang, as the process is gone. */
  kill(): void {
    this.dead = true;
  }

  private hang(): Promise<never> {
    return new Promise<never>(() => undefined);
  }

  /** @inheritdoc */
  save(update: LogUpdate, options: { readonly sync: boolean }): Promise<void> {
    if (this.dead) return this.hang();
    invariant(!this.closed, "log store is closed");
    const operation: DiskOperation = { kind: "save", update };
    applyOperation(this.memory, operation);
    return this.io.write(operation, options.sync);
  }

  /** @inheritdoc */
  async saveSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    if (this.dead) return this.hang();
    invariant(!this.closed, "log store is closed");
    const operation: DiskOperation = { kind: "snapshot", index, confState, data };
    const snapshot = applyOperation(this.memory, operation) as Snapshot;
    await this.io.write(operation, true);
    return snapshot;
  }

  /** @inheritdoc */
  async compact(index: number): Promise<void> {
    if (this.dead) return this.hang();
    invariant(!this.closed, "log store is closed");
    const operation: DiskOperation = { kind: "compact", index };
    applyOperation(this.memory, operation);
    await this.io.write(operation, true);
  }

  /** @inheritdoc */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
