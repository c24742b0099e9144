/**
 * Drives a snapshot encoded a slice at a time (`StateMachine.captureSnapshot`) between turns of
 * the event loop, so that a large state never holds the loop for long: ticks, peers' messages,
 * applies and client requests run between the turns. Each turn encodes slices until
 * {@link SNAPSHOT_TURN_BUDGET_MS} have passed on the node's clock or
 * {@link SNAPSHOT_TURN_MAX_BYTES} are encoded (a bound that also holds under the simulator's
 * clock, which stands still within a turn).
 *
 * Given somewhere to stream to (the log store's {@link SnapshotWriter}), each turn's bytes are
 * written out before the next turn and the encoding reuses one buffer: no buffer of the whole
 * snapshot is ever allocated. A 200 MB state's buffer cost as much again in memory, and touching
 * that much fresh memory at once stalled the event loop for long enough to cost an election.
 */
import type { Clock, TimerHandle } from "../common/clock.js";
import type { SnapshotWriter } from "../storage/log-store.js";
import {
  DEFAULT_SNAPSHOT_SLICE_BYTES,
  type SnapshotEncoding,
} from "../statemachine/state-machine.js";

/** A turn of snapshot encoding hands the event loop back after this long. */
export const SNAPSHOT_TURN_BUDGET_MS = 2;
/** A turn of snapshot encoding encodes at most this many bytes, whatever the clock says: 4 MiB. */
export const SNAPSHOT_TURN_MAX_BYTES = 4 * 1024 * 1024;

/** How a {@link SlicedSnapshotRunner} run ended. */
export type SlicedSnapshotOutcome =
  | { readonly kind: "complete"; readonly data: Uint8Array; readonly turns: number }
  /** Streamed: every byte was written to `writer`, which the caller commits (or aborts). */
  | {
      readonly kind: "streamed";
      readonly writer: SnapshotWriter;
      readonly sizeBytes: number;
      readonly turns: number;
    }
  | { readonly kind: "abandoned" };

/** Opens where a streamed snapshot goes, once its size is known. */
export type OpenSnapshotWriter = (sizeBytes: number) => Promise<SnapshotWriter>;

/** Encodes one snapshot between turns; see the module comment. One run per instance. */
export class SlicedSnapshotRunner {
  readonly #clock: Clock;
  readonly #encoding: SnapshotEncoding;
  #waiting: { readonly timer: TimerHandle; readonly resume: () => void } | undefined;
  #abandoned = false;

  /** Runs `encoding` on `clock`'s timers. Throws nothing. */
  constructor(clock: Clock, encoding: SnapshotEncoding) {
    this.#clock = clock;
    this.#encoding = encoding;
  }

  /**
   * Encodes the snapshot, a turn at a time, starting on a later turn. Before each turn
   * `stillWanted` is asked; false (the node stops, or a newer snapshot was installed) abandons
   * it. With `open`, the bytes are streamed (see the module comment); a stream abandoned or
   * failed is aborted. The encoding is closed either way. Rejects with what the encoding throws
   * (a bug) or what the writer throws (a full disk).
   */
  async run(stillWanted: () => boolean, open?: OpenSnapshotWriter): Promise<SlicedSnapshotOutcome> {
    const encoding = this.#encoding;
    if (open !== undefined) encoding.startStreaming();
    let writer: SnapshotWriter | undefined;
    let handedOver = false;
    let turns = 0;
    try {
      for (;;) {
        await this.#nextTurn();
        if (this.#abandoned || !stillWanted()) return { kind: "abandoned" };
        turns++;
        const startMs = this.#clock.now();
        // Counted by the encoding: slices of parts encoded ahead are empty (see `next`).
        const startBytes = encoding.encodedBytes;
        let complete = false;
        do {
          complete = encoding.next(DEFAULT_SNAPSHOT_SLICE_BYTES) === undefined;
        } while (
          !complete &&
          encoding.encodedBytes - startBytes < SNAPSHOT_TURN_MAX_BYTES &&
          this.#clock.now() - startMs < SNAPSHOT_TURN_BUDGET_MS
        );
        if (open === undefined) {
          if (complete) return { kind: "complete", data: encoding.finish(), turns };
          continue;
        }
        const sizeBytes = encoding.sizeBytes;
        if (sizeBytes === undefined) continue;
        writer ??= await open(sizeBytes);
        const bytes = encoding.take();
        if (bytes.length > 0) await writer.write(bytes);
        if (complete) {
          handedOver = true;
          return { kind: "streamed", writer, sizeBytes, turns };
        }
      }
    } finally {
      encoding.close();
      if (writer !== undefined && !handedOver) await writer.abort();
    }
  }

  /** Ends the run at once (before its next turn), e.g. when the node stops. Idempotent. */
  abandon(): void {
    this.#abandoned = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.timer.cancel();
    waiting?.resume();
  }

  #nextTurn(): Promise<void> {
    if (this.#abandoned) return Promise.resolve();
    return new Promise<void>((resume) => {
      const timer = this.#clock.setTimer(0, () => {
        this.#waiting = undefined;
        resume();
      });
      this.#waiting = { timer, resume };
    });
  }
}
