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
