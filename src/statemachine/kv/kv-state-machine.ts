/**
 * The replicated key-value state machine: the {@link KvStore} under client sessions, plus the
 * read-only queries the runtime serves without going through the log.
 */
import type { CommandResult } from "../command-result.js";
import { SessionedStateMachine, type SessionInfo } from "../session/sessioned-state-machine.js";
import type { SessionOptions } from "../session/session-options.js";
import type { AppliedEntry, SnapshotEncoding, StateMachine } from "../state-machine.js";
import { KvStore, type KvListOptions, type KvListResult, type KvStoreOptions } from "./store.js";
import type { KvCommand, KvEntry, KvLease, KvResult } from "./types.js";

/** Options of a kv state machine. Every replica must run with the same values. */
export interface KvStateMachineOptions extends KvStoreOptions {
  /** Bounds of the client session table. */
  readonly sessions?: SessionOptions;
}

/**
 * The replicated key-value store. Entries are command envelopes (`encodeCommandEnvelope`)
 * around kv commands (`encodeKvCommand`); `apply` returns a {@link CommandResult} of a
 * {@link KvResult}. See "Retry rules for client writers" in `sessioned-state-machine.ts`.
 */
export class KvStateMachine implements StateMachine<CommandResult<KvResult>> {
  readonly #store: KvStore;
  readonly #machine: SessionedStateMachine<KvCommand, KvResult>;

  /** An empty store. Throws `InvalidArgumentError` if an option is out of range. */
  constructor(options: KvStateMachineOptions = {}) {
    this.#store = new KvStore(
      options.maxStoreBytes === undefined ? {} : { maxStoreBytes: options.maxStoreBytes },
    );
    this.#machine = new SessionedStateMachine(this.#store, options.sessions);
  }

  /**
   * Applies one committed entry. Never throws for a bad command (see the retry rules); throws
   * `InternalError` if entries arrive out of index order.
   */
  apply(entry: AppliedEntry): CommandResult<KvResult> {
    return this.#machine.apply(entry);
  }

  /** The whole state (log time, sessions, keys) as deterministic, checksummed bytes. Throws nothing. */
  snapshot(): Uint8Array {
    return this.#machine.snapshot();
  }

  /**
   * Captures the state now and returns its snapshot to encode a slice at a time while entries
   * keep being applied: the bytes of {@link snapshot} at this call. Throws nothing.
   */
  captureSnapshot(): SnapshotEncoding {
    return this.#machine.captureSnapshot();
  }

  /** Replaces the state with a snapshot's; throws `InvalidArgumentError` on bad bytes, changing nothing. */
  restore(data: Uint8Array): void {
    this.#machine.restore(data);
  }

  /**
   * The entry of `key` (value copied) or null, outside the log: linearizable once the runtime has
   * applied up to a ReadIndex. Throws `InvalidArgumentError` or `TooLargeError` for a bad key.
   */
  read(key: string): KvEntry | null {
    return this.#store.read(key);
  }

  /** One page of keys by prefix and/or range, outside the log; see `KvStore.list` for bounds and throws. */
  list(options: KvListOptions = {}): KvListResult {
    return this.#store.list(options);
  }

  /** The lease `id`, or undefined. Throws nothing. */
  lease(id: number): KvLease | undefined {
    return this.#store.lease(id);
  }

  /** The keys attached to lease `id`, in key order. Throws nothing. */
  leaseKeys(id: number): string[] {
    return this.#store.leaseKeys(id);
  }

  /** Visits every lease (id, TTL) in id order. Throws nothing. */
  forEachLease(visit: (id: number, ttlMs: number) => void): void {
    this.#store.forEachLease(visit);
  }

  /** How many leases there are. */
  get leaseCount(): number {
    return this.#store.leaseCount;
  }

  /** The store revision. */
  get revision(): number {
    return this.#store.revision;
  }

  /** How many keys there are. */
  get keyCount(): number {
    return this.#store.keyCount;
  }

  /** Bytes used against the store quota. */
  get storeBytes(): number {
    return this.#store.storeBytes;
  }

  /** Log time: the largest `proposedAtMs` applied. */
  get logTimeMs(): number {
    return this.#machine.logTimeMs;
  }

  /** How many client sessions are open. */
  get sessionCount(): number {
    return this.#machine.sessionCount;
  }

  /** The open session of `clientId`, or undefined. Throws nothing. */
  session(clientId: string): SessionInfo | undefined {
    return this.#machine.session(clientId);
  }
}
