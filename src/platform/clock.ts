import type { Clock, TimerHandle } from "../common/clock.js";

/**
 * The real clock: milliseconds since the Unix epoch, kept monotonic within the process
 * (`performance.timeOrigin + performance.now()` does not jump when the wall clock is set), and
 * Node's timers. Epoch-based because proposers stamp commands with it and replicas compare those
 * stamps across leaders (session expiry). Wired in by the CLI only.
 */
export class SystemClock implements Clock {
  /** @inheritdoc */
  now(): number {
    return performance.timeOrigin + performance.now();
  }

  /** @inheritdoc */
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  }
}
