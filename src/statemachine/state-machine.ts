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
  /** The command bytes as proposed (for sessioned machines: a command envelope). */
  readonly data: Uint8Array;
}

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
  /** Replaces the state with a snapshot's; throws `InvalidArgumentError` on malformed bytes without changing the state. */
  restore(data: Uint8Array): void;
}
