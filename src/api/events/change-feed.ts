/**
 * The change feed of one node: every change its state machine applies, grouped by raft entry in
 * log order, in a bounded in-memory history that event streams and kv watches read through
 * cursors. A follower has the same feed as the leader (the same entries apply everywhere), so
 * any node serves any stream, and an index or revision means the same thing on every node.
 *
 * Bounds: the history keeps at most `maxRecords` entries and about `maxBytes` of events; older
 * entries are dropped, and a stream asking for them gets `GONE` with the oldest one kept (etcd's
 * compaction error). A snapshot installed from the leader replaces the state without its
 * history: the feed then starts over, and every open stream is ended with `GONE`.
 *
 * Memory per stream is a cursor (a sequence number): streams never copy the history.
 */
import { invariant } from "../../common/assert.js";
import { GoneError } from "../../common/errors.js";
import type { Defer } from "../apply-notifier.js";
import type { StateChange } from "../../statemachine/changes.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/queries.js";
import type { AppliedEntry, StateMachine } from "../../statemachine/state-machine.js";
import { FeedEvent } from "./feed-event.js";

/** Default of {@link ChangeFeedOptions.maxRecords}. */
export const DEFAULT_MAX_FEED_RECORDS = 10_000;
/** Default of {@link ChangeFeedOptions.maxBytes}: 64 MiB. */
export const DEFAULT_MAX_FEED_BYTES = 64 * 1024 * 1024;

/** The events of one applied raft entry. */
export interface FeedRecord {
  /** The raft index of the entry. */
  readonly index: number;
  /** The kv store revision after the entry. */
  readonly kvRevision: number;
  readonly events: readonly FeedEvent[];
  /** Approximate bytes held by the events. */
  readonly bytes: number;
}

/** What the feed observes: the cluster state machine (or a test double). */
export interface FeedSource {
  /** Sets the change observer (see `statemachine/changes.ts`). */
  observe(observer: ((change: StateChange) => void) | undefined): void;
  /** Where touched entities are read once their entry is applied. */
  readonly orchestrator: OrchestratorQueries;
  /** The kv store revision. */
  readonly revision: number;
}

/** Options of a {@link ChangeFeed}. */
export interface ChangeFeedOptions {
  /** Entries kept, at most. Default {@link DEFAULT_MAX_FEED_RECORDS}. */
  readonly maxRecords?: number;
  /** Approximate bytes of events kept, at most. Default {@link DEFAULT_MAX_FEED_BYTES}. */
  readonly maxBytes?: number;
  /** The node's applied index, for the floor after a snapshot was installed. */
  readonly appliedIndex?: () => number;
  /**
   * Runs the listeners on a later turn: the node's `defer` (a zero-delay event of the node's clock
   * in the simulator, whose runs never yield to the event loop, so a real `setImmediate` would
   * never fire there). Default: `setImmediate`.
   */
  readonly defer?: Defer;
}

/** See the module comment. */
export class ChangeFeed {
  readonly #source: FeedSource;
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  readonly #appliedIndex: () => number;
  /** Ring of records: slot `seq % maxRecords` holds record `seq` for seq in [firstSeq, nextSeq). */
  readonly #ring: (FeedRecord | undefined)[];
  #firstSeq = 0;
  #nextSeq = 0;
  #bytes = 0;
  /** Entries at or below this index are not in the history (undefined: ask `appliedIndex`). */
  #floorIndex: number | undefined = 0;
  /** The kv revision at the floor: revisions at or below it are not in the history. */
  #floorRevision = 0;
  /** Changes with every reset (snapshot installed): cursors of an older epoch are void. */
  #epoch = 0;
  #lastIndex = 0;
  /** Changes of the entry being applied, in order (reused). */
  #pending: StateChange[] = [];
  readonly #listeners = new Set<() => void>();
  #scheduled = false;
  readonly #defer: Defer;

  /** Observes `source` from now on. Throws `InternalError` for a bound below 1 (a bug). */
  constructor(source: FeedSource, options: ChangeFeedOptions = {}) {
    this.#source = source;
    this.#maxRecords = options.maxRecords ?? DEFAULT_MAX_FEED_RECORDS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_FEED_BYTES;
    invariant(this.#maxRecords >= 1 && this.#maxBytes >= 1, "change feed bounds must be ≥ 1");
    this.#appliedIndex = options.appliedIndex ?? (() => this.#lastIndex);
    this.#defer = options.defer ?? ((callback) => void setImmediate(callback));
    this.#ring = new Array<FeedRecord | undefined>(this.#maxRecords);
    this.#floorRevision = source.revision;
    source.observe((change) => this.#pending.push(change));
  }

  /**
   * Wraps `machine` (the same state machine as the source) so each applied entry's changes are
   * recorded with its index, and a restore resets the feed. Hand the wrapper to the runtime.
   */
  wrap<Result>(machine: StateMachine<Result>): StateMachine<Result> {
    // Capturing a snapshot changes nothing the feed records: pass it through when there is one.
    const capture = machine.captureSnapshot?.bind(machine);
    return {
      ...(capture === undefined ? {} : { captureSnapshot: capture }),
      apply: (entry: AppliedEntry): Result => {
        this.#pending.length = 0;
        const result = machine.apply(entry);
        this.#record(entry.index);
        return result;
      },
      snapshot: () => machine.snapshot(),
      restore: (data: Uint8Array) => {
        machine.restore(data);
        this.#reset();
      },
    };
  }

  /** Calls `listener` soon after each burst of new records or a reset; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The current epoch (see {@link read}). */
  get epoch(): number {
    return this.#epoch;
  }

  /** The sequence number the next record will get. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** The sequence number of the oldest record kept. */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** The newest index the feed has seen applied (its floor when nothing was). */
  get lastIndex(): number {
    return Math.max(this.#lastIndex, this.floorIndex);
  }

  /** The kv revision now. */
  get kvRevision(): number {
    return this.#source.revision;
  }

  /** Entries at or below this index are no longer kept. */
  get floorIndex(): number {
    return this.#floorIndex ?? this.#appliedIndex();
  }

  /** kv revisions at or below this one are no longer kept. */
  get floorRevision(): number {
    return this.#floorRevision;
  }

  /** How many records and approximately how many bytes are kept. */
  get size(): { readonly records: number; readonly bytes: number } {
    return { records: this.#nextSeq - this.#firstSeq, bytes: this.#bytes };
  }

  /**
   * The cursor (sequence number) of the first record at index ≥ `fromIndex`; with no
   * `fromIndex`, of the next record to be applied. Throws `GoneError` if entries from
   * `fromIndex` on are no longer all kept.
   */
  seekIndex(fromIndex: number | undefined): number {
    if (fromIndex === undefined) return this.#nextSeq;
    const floor = this.floorIndex;
    if (fromIndex <= floor) {
      throw new GoneError(
        `index ${fromIndex} is no longer kept (the history starts after ${floor}); ` +
          `re-read the state and resume from ${floor + 1}`,
        floor + 1,
      );
    }
    return this.#lowerBound((record) => record.index >= fromIndex);
  }

  /**
   * The cursor of the first record with a kv change at revision ≥ `fromRevision`; with no
   * `fromRevision`, of the next record. Throws `GoneError` if revisions from `fromRevision` on are
   * no longer all kept.
   */
  seekRevision(fromRevision: number | undefined): number {
    if (fromRevision === undefined) return this.#nextSeq;
    const floor = this.#floorRevision;
    if (fromRevision <= floor) {
      throw new GoneError(
        `revision ${fromRevision} is no longer kept (the history starts after ${floor}); ` +
          `re-read the keys and resume from ${floor + 1}`,
        floor + 1,
      );
    }
    return this.#lowerBound((record) => record.kvRevision >= fromRevision);
  }

  /**
   * The record at cursor `seq`: undefined when not applied yet; throws `GoneError` when it was
   * dropped from the history (the reader fell too far behind) or `epoch` is not the current one
   * (a snapshot replaced the state).
   */
  read(seq: number, epoch: number): FeedRecord | undefined {
    if (epoch !== this.#epoch) {
      const floor = this.floorIndex;
      throw new GoneError(
        `this node installed a snapshot, which replaces its history; re-read the state and ` +
          `resume from ${floor + 1}`,
        floor + 1,
      );
    }
    if (seq >= this.#nextSeq) return undefined;
    if (seq < this.#firstSeq) {
      const floor = this.floorIndex;
      throw new GoneError(
        `fell behind: the events after index ${floor} are no longer kept; re-read the state ` +
          `and resume from ${floor + 1}`,
        floor + 1,
      );
    }
    return this.#ring[seq % this.#maxRecords];
  }

  /** The first cursor in [firstSeq, nextSeq) whose record satisfies a monotone predicate. */
  #lowerBound(predicate: (record: FeedRecord) => boolean): number {
    let low = this.#firstSeq;
    let high = this.#nextSeq;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (predicate(this.#ring[mid % this.#maxRecords] as FeedRecord)) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  #record(index: number): void {
    if (this.#floorIndex === undefined) this.#floorIndex = index - 1;
    this.#lastIndex = index;
    if (this.#pending.length === 0) return;
    const events = this.#resolve(this.#pending);
    this.#pending.length = 0;
    let bytes = 0;
    for (const event of events) bytes += event.bytes;
    while (
      this.#nextSeq - this.#firstSeq >= this.#maxRecords ||
      (this.#bytes + bytes > this.#maxBytes && this.#nextSeq > this.#firstSeq)
    ) {
      this.#evictOldest();
    }
    this.#ring[this.#nextSeq % this.#maxRecords] = {
      index,
      kvRevision: this.#source.revision,
      events,
      bytes,
    };
    this.#nextSeq++;
    this.#bytes += bytes;
    this.#schedule();
  }

  #evictOldest(): void {
    const slot = this.#firstSeq % this.#maxRecords;
    const oldest = this.#ring[slot] as FeedRecord;
    this.#ring[slot] = undefined;
    this.#firstSeq++;
    this.#bytes -= oldest.bytes;
    this.#floorIndex = oldest.index;
    this.#floorRevision = oldest.kvRevision;
  }

  /**
   * The events of one entry: kv changes as they are (each has its own revision), touched
   * entities once each, in first-touch order, as they stand after the entry.
   */
  #resolve(changes: readonly StateChange[]): FeedEvent[] {
    const events: FeedEvent[] = [];
    const seen = new Set<string>();
    const once = (key: string): boolean => !seen.has(key) && seen.add(key) !== undefined;
    const orchestrator = this.#source.orchestrator;
    for (const change of changes) {
      switch (change.kind) {
        case "kv.put":
          events.push(new FeedEvent({ kind: "kv.put", change }));
          break;
        case "kv.delete":
          events.push(new FeedEvent(change));
          break;
        case "task":
          if (once(`t${change.id}`)) {
            events.push(
              new FeedEvent({ kind: "task", id: change.id, task: orchestrator.task(change.id) }),
            );
          }
          break;
        case "vm":
          if (once(`v${change.name}`)) {
            events.push(
              new FeedEvent({ kind: "vm", name: change.name, vm: orchestrator.vm(change.name) }),
            );
          }
          break;
        case "worker": {
          const worker = orchestrator.worker(change.nodeId);
          if (worker !== undefined && once(`w${change.nodeId}`)) {
            events.push(new FeedEvent({ kind: "worker", worker }));
          }
          break;
        }
        case "settings":
          if (once("s")) {
            events.push(new FeedEvent({ kind: "settings", settings: orchestrator.settings() }));
          }
          break;
        case "acl":
          events.push(new FeedEvent(change));
          break;
      }
    }
    return events;
  }

  #reset(): void {
    for (let seq = this.#firstSeq; seq < this.#nextSeq; seq++) {
      this.#ring[seq % this.#maxRecords] = undefined;
    }
    this.#firstSeq = this.#nextSeq;
    this.#bytes = 0;
    this.#floorIndex = undefined;
    this.#floorRevision = this.#source.revision;
    this.#pending.length = 0;
    this.#epoch++;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#listeners.size === 0) return;
    this.#scheduled = true;
    this.#defer(() => {
      this.#scheduled = false;
      for (const listener of [...this.#listeners]) listener();
    });
  }
}
