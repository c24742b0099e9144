/**
 * Drives a snapshot encoded a slice at a time (`StateMachine.captureSnapshot`) between turns of
 * the event loop, so that a large state never holds the loop for long: ticks, peers' messages,
 * applies and client requests run between the turns. Each turn encodes slices until
 * {@link SNAPSHOT_TURN_BUDGET_MS} have passed on the node's clock or
 * {@link SNAPSHOT_TURN_MAX_BYTES} are encoded (a bound that also holds under the simulator's
 * clock, which stands still within a turn).
 */
import type { Clock, TimerHandle } from "../common/clock.js";
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
  | { readonly kind: "abandoned" };

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
   * it. The encoding is closed either way. Rejects only with what the encoding throws (a bug).
   */
  async run(stillWanted: () => boolean): Promise<SlicedSnapshotOutcome> {
    const encoding = this.#encoding;
    let turns = 0;
    try {
      for (;;) {
        await this.#nextTurn();
        if (this.#abandoned || !stillWanted()) return { kind: "abandoned" };
        turns++;
        const startMs = this.#clock.now();
        // Counted by the encoding: slices of parts encoded ahead are empty (see `next`).
        const startBytes = encoding.encodedBytes;
        do {
          const slice = encoding.next(DEFAULT_SNAPSHOT_SLICE_BYTES);
          if (slice === undefined) return { kind: "complete", data: encoding.finish(), turns };
        } while (
          encoding.encodedBytes - startBytes < SNAPSHOT_TURN_MAX_BYTES &&
          this.#clock.now() - startMs < SNAPSHOT_TURN_BUDGET_MS
        );
      }
    } finally {
      encoding.close();
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
