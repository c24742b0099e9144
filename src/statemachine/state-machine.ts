/**
 * The port the runtime drives: a deterministic replicated state machine. The runtime applies
 * committed entries in log order, takes snapshots for log compaction and restores one on restart
 * or when the leader sends it.
 */

/** A committed entry as the state machine sees it. */
export interface AppliedEntry {
  /** The entry's raft log index. Applied indexes strictly increase. */
  readonly index: number;
  /** The term the entry was proposed in. */
  readonly term: number;
  /**
   * The command bytes as proposed (for sessioned machines: a command envelope). They never change
   * (a log entry is immutable), so the machine may keep views into them; where they are a view
   * into a larger buffer, a view keeps that whole buffer alive, so keep views only where the
   * buffer is not much larger than what is kept (see `KvValueMode`'s `lean`), or see `stableData`.
   */
  readonly data: Uint8Array;
  /**
   * True if `data` is a view into memory that is kept anyway (the entries a restarting node
   * replays from its log on disk): the machine may then keep views into it whatever the buffer's
   * size, which spares a restart a fresh allocation per value.
   */
  readonly stableData?: boolean;
}

/**
 * A snapshot captured at one point in time and encoded a slice at a time, so that a large state
 * never holds the event loop for long ({@link StateMachine.captureSnapshot}). The bytes, once
 * complete, are exactly what `snapshot()` returned at the capture, whatever was applied since.
 */
export interface SnapshotEncoding {
  /**
   * Bytes encoded so far, including those encoded ahead (see {@link next}): what a caller bounds
   * its work per turn by. Only grows.
   */
  readonly encodedBytes: number;
  /**
   * Encodes the next slice of about `budgetBytes` (at most one record more; default
   * {@link DEFAULT_SNAPSHOT_SLICE_BYTES}) and returns its bytes, or undefined once the snapshot
   * is complete. A returned slice is a view into the final snapshot and never changes. The first
   * slices may be empty: parts whose size is known only once encoded (the orchestrator's JSON)
   * are encoded ahead into pieces of their own, since a length precedes each part. Throws
   * `InternalError` after {@link close} or for a budget below 1.
   */
  next(budgetBytes?: number): Uint8Array | undefined;
  /** The complete snapshot (no copy). Throws `InternalError` before `next` returned undefined. */
  finish(): Uint8Array;
  /**
   * The whole snapshot's size in bytes once known (from the first non-empty slice on: parts
   * encoded ahead must be prepared first), else undefined.
   */
  readonly sizeBytes: number | undefined;
  /**
   * Makes the encoding keep only the bytes not yet {@link take}n, in one buffer reused from take
   * to take, so that a caller writing the snapshot out as it goes never holds all of it. Call
   * before the first slice; {@link finish} then throws. Throws `InternalError` if called late.
   */
  startStreaming(): void;
  /**
   * Hands out the bytes encoded since the previous take (possibly none); they stay valid until
   * the next {@link next}, which reuses their buffer. Throws `InternalError` unless streaming.
   */
  take(): Uint8Array;
  /**
   * Releases the captured view (the state stops keeping old records for it). Idempotent. Call it
   * when abandoning an encoding; a completed one releases its view by itself.
   */
  close(): void;
}

/** What {@link SnapshotEncoding.next} encodes per call unless told otherwise: 256 KiB. */
export const DEFAULT_SNAPSHOT_SLICE_BYTES = 256 * 1024;

/**
 * A deterministic replicated state machine. State lives in memory; the raft log and snapshots
 * make it durable.
 *
 * Determinism: `apply` reads nothing but the state and the entry (no clock, no randomness, no
 * I/O), so every replica that applies the same entries holds the same state and returns the same
 * results.
 */
export interface StateMachine<Result = unknown> {
  /**
   * Applies one committed normal entry (never an empty no-op; the runtime skips those) and
   * returns the result handed to the proposer. Never throws for a bad command: a malformed
   * command yields an error result and leaves the state unchanged, so every replica does the
   * same. Throws `InternalError` only for a bug (e.g. entries applied out of index order).
   */
  apply(entry: AppliedEntry): Result;
  /** Serializes the whole state (including sessions) deterministically: equal states give equal bytes. */
  snapshot(): Uint8Array;
  /**
   * Optional: captures the state now, cheaply (no encoding of the bulk of it), and returns its
   * snapshot to be encoded a slice at a time while `apply` and `restore` go on. The result equals
   * `snapshot()` at the call. Machines without it are snapshotted with `snapshot()`. Throws
   * nothing.
   */
  captureSnapshot?(): SnapshotEncoding;
  /** Replaces the state with a snapshot's; throws `InvalidArgumentError` on malformed bytes without changing the state. */
  restore(data: Uint8Array): void;
}
