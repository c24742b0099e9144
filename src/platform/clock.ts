import type { Clock, TimerHandle } from "../common/clock.js";

/**
 * The real clock: milliseconds since the Unix epoch, kept monotonic within the process
 * (`performance.timeOrigin + performance.now()` does not jump when the wall clock is set), and
 * Node's timers. Epoch-based because proposers stamp commands with it and replicas compare those
 * stamps across leaders (session expiry). Wired in by the CLI only.
 */
export class SystemClock implements Clock {
  #lastMs = 0;

  /**
   * @param readMs The raw reading; only tests replace it. The monotonic clock cannot go back
   *   on Linux, but under libfaketime (the fault suite's clock jumps fake it too) or a buggy
   *   hypervisor it can: then this clock stands still until the reading passes it again, so
   *   elapsed times (link silence, redial age, retry windows) are never negative.
   */
  constructor(private readonly readMs: () => number = () => performance.now()) {}

  /** @inheritdoc */
  now(): number {
    const ms = performance.timeOrigin + this.readMs();
    if (ms > this.#lastMs) this.#lastMs = ms;
    return this.#lastMs;
  }

  /** @inheritdoc */
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    return new NodeTimer(setTimeout(callback, delayMs));
  }
}

/**
 * A Node timer as a {@link TimerHandle}: one object, no closure (an idle follower moves its
 * election timer at every heartbeat).
 */
class NodeTimer implements TimerHandle {
  constructor(private readonly timeout: NodeJS.Timeout) {}

  cancel(): void {
    clearTimeout(this.timeout);
  }
}
