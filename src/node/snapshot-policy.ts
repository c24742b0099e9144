/**
 * When the runtime takes a snapshot: once the log since the last one is large relative to the
 * state (its bytes reach a fraction of the last snapshot's size, between a floor and a cap), or
 * holds too many entries. Sizing by the state keeps write amplification bounded as the state
 * grows: with ratio r, snapshots grow geometrically by (1 + r) during a fill of new keys, so all
 * of them together come to about (1 + r) / r times the final state (2× for r = 1), whereas a
 * fixed cadence writes the whole state again every N entries however large it is.
 */

/** The policy's knobs. */
export interface SnapshotPolicy {
  /** Snapshot once this many entries were applied since the last one, whatever their size. */
  readonly everyEntries: number;
  /** Log bytes since the last snapshot that trigger one, as a fraction of that snapshot's size. */
  readonly logToSnapshotRatio: number;
  /** The byte threshold is never below this (a small state still snapshots in batches). */
  readonly minLogBytes: number;
  /** Nor above this (bounds the log kept in memory and replayed on restart). */
  readonly maxLogBytes: number;
}

/** What was applied since the last snapshot. */
export interface SinceSnapshot {
  readonly entries: number;
  readonly logBytes: number;
  /** The size of the last snapshot's data, in bytes (0 for none). */
  readonly lastSnapshotBytes: number;
}

/** The log bytes since the last snapshot that make the next one due. */
export function snapshotThresholdBytes(policy: SnapshotPolicy, lastSnapshotBytes: number): number {
  const proportional = Math.ceil(policy.logToSnapshotRatio * lastSnapshotBytes);
  return Math.min(policy.maxLogBytes, Math.max(policy.minLogBytes, proportional));
}

/** True if a snapshot is due. */
export function snapshotDue(policy: SnapshotPolicy, since: SinceSnapshot): boolean {
  return (
    since.entries >= policy.everyEntries ||
    since.logBytes >= snapshotThresholdBytes(policy, since.lastSnapshotBytes)
  );
}
