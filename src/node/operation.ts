import { CancelledError, TimeoutError } from "../common/errors.js";
import type { Clock, TimerHandle } from "./ports.js";

/** Per-call options of every runtime operation. */
export interface OperationOptions {
  /** Cancels the operation; it then rejects with `CancelledError` (its outcome is unknown). */
  readonly signal?: AbortSignal;
  /** Rejects with `TimeoutError` after this long (outcome unknown). Default: the node's. */
  readonly timeoutMs?: number;
}

/** The abort listener's options, one object for every operation. */
const ONCE = Object.freeze({ once: true });

/**
 * One pending operation: a promise with its timeout and cancellation wired in, settled at most
 * once. `onSettle` runs exactly once however it ends, so callers can drop their bookkeeping.
 */
export class Operation<T> {
  readonly promise: Promise<T>;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (error: Error) => void;
  private timer: TimerHandle | undefined;
  private settled = false;
  private readonly abortListener: (() => void) | undefined;
  /** See {@link whenSettled}. */
  private afterSettle: (() => void) | undefined;

  constructor(
    private readonly options: {
      readonly clock: Clock;
      readonly timeoutMs: number;
      readonly signal: AbortSignal | undefined;
      readonly what: string;
      readonly onSettle: () => void;
    },
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    const { signal } = options;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.abortListener = undefined;
        this.reject(new CancelledError(`${options.what} was cancelled before it started`));
        return;
      }
      this.abortListener = () =>
        this.reject(new CancelledError(`${options.what} was cancelled; its outcome is unknown`));
      signal.addEventListener("abort", this.abortListener, ONCE);
    } else {
      this.abortListener = undefined;
    }
    this.timer = options.clock.setTimer(options.timeoutMs, () =>
      this.reject(
        new TimeoutError(
          `${options.what} did not complete within ${options.timeoutMs} ms; its outcome is unknown, retry idempotently`,
        ),
      ),
    );
  }

  /** True once resolved or rejected. */
  get done(): boolean {
    return this.settled;
  }

  /**
   * Runs `callback` once the operation settles (at once if it has): for bookkeeping that is known
   * only after the operation was made, like a proposal's log index. Unlike a `then` on
   * {@link promise}, no promise and no microtask per operation; the callback runs as it settles.
   * One callback per operation; a second replaces the first.
   */
  whenSettled(callback: () => void): void {
    if (this.settled) {
      callback();
      return;
    }
    this.afterSettle = callback;
  }

  /** Resolves the operation (ignored if already settled). */
  resolve(value: T): void {
    if (this.settle()) this.resolveFn(value);
  }

  /** Rejects the operation (ignored if already settled). */
  reject(error: Error): void {
    if (this.settle()) this.rejectFn(error);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.abortListener !== undefined) {
      this.options.signal?.removeEventListener("abort", this.abortListener);
    }
    this.options.onSettle();
    const after = this.afterSettle;
    this.afterSettle = undefined;
    after?.();
    return true;
  }
}
