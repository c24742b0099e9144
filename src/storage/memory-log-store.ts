import { invariant } from "../common/assert.js";
import { MemoryStorage } from "../raft/storage.js";
import type { ConfState, Snapshot } from "../raft/types.js";
import type { LogStore, LogUpdate } from "./log-store.js";
import { MemoryBackedReads } from "./memory-backed-reads.js";

/**
 * The in-memory twin of the durable log store: the same interface, every write "durable" at
 * once. Used by tests and wherever durability is not the point; the simulator's disk model and
 * the real WAL implement the same {@link LogStore}.
 */
export class MemoryLogStore extends MemoryBackedReads implements LogStore {
  private closed = false;

  /** @param options.confState the initial configuration of a new cluster's node. */
  constructor(options: { confState?: ConfState } = {}) {
    super(new MemoryStorage(options));
  }

  /** @inheritdoc */
  save(update: LogUpdate): Promise<void> {
    invariant(!this.closed, "log store is closed");
    if (update.snapshot !== undefined) this.memory.applySnapshot(update.snapshot);
    if (update.entries.length > 0) this.memory.append(update.entries);
    if (update.hardState !== undefined) this.memory.setHardState(update.hardState);
    return Promise.resolve();
  }

  /** @inheritdoc */
  saveSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    invariant(!this.closed, "log store is closed");
    return Promise.resolve(this.memory.createSnapshot(index, confState, data));
  }

  /** @inheritdoc */
  compact(index: number): Promise<void> {
    invariant(!this.closed, "log store is closed");
    if (index > this.memory.firstIndex()) this.memory.compact(index);
    return Promise.resolve();
  }

  /** @inheritdoc */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
