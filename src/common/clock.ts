/**
 * Time as a port. The runtime and the transport take a Clock; the real one lives in
 * src/platform and the simulator's in src/sim, so the same code runs on either.
 */

/** A timer that can be cancelled. */
export interface TimerHandle {
  /** Cancels the timer; a no-op once it has fired. */
  cancel(): void;
}

/** Time and timers. */
export interface Clock {
  /** Milliseconds since an arbitrary, fixed origin; never decreases. */
  now(): number;
  /** Calls `callback` once after `delayMs`. */
  setTimer(delayMs: number, callback: () => void): TimerHandle;
}

/**
 * The delay from `nowMs` to the next whole multiple of `periodMs` on the same clock, at least
 * half a period away: for a periodic check that may run at any phase. Checks that all arm their
 * timers this way, with periods that divide one another (250 ms, 500 ms, 1 s), run in the same
 * wake-up of the process instead of each in its own (an idle node had five 1-second checks, each
 * waking it at its own phase).
 * The period stays the same on average: the first run comes half a period to one and a half
 * after the start, and a timer that ran early or late is put back on the grid (never twice
 * within half a period). Throws nothing.
 */
export function alignedDelayMs(nowMs: number, periodMs: number): number {
  if (!(periodMs > 0)) return 0;
  const delayMs = periodMs - (nowMs % periodMs);
  return delayMs < periodMs / 2 ? delayMs + periodMs : delayMs;
}
