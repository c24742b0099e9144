import type { Clock, TimerHandle } from "../common/clock.js";

/**
 * The real clock: monotonic time from `performance.now()` and Node's timers. Wired in by the
 * CLI only; deterministic code never sees it.
 */
export class SystemClock implements Clock {
  /** @inheritdoc */
  now(): number {
    return performance.now();
  }

  /** @inheritdoc */
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  }
}
