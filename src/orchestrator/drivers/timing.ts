/**
 * Waiting on the `Clock` port: a delay that an `AbortSignal` can cut short, and a bounded wait for
 * a promise. The drivers take their clock from the caller so that a test or the composition root
 * decides what time is.
 */
import type { Clock } from "../../common/clock.js";

/**
 * Waits `delayMs` on `clock`. Resolves `true` when the time has passed and `false` as soon as
 * `signal` aborts (at once if it already has). Never rejects.
 */
export function delay(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted === true) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimer(delayMs, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** What {@link within} saw: the promise's value in time, or nothing. */
export type Within<T> = { readonly inTime: true; readonly value: T } | { readonly inTime: false };

/**
 * Waits for `promise` for at most `limitMs` on `clock`. The promise must not reject (the drivers
 * use it on exit promises, which never do); its timer is cancelled as soon as it settles.
 */
export function within<T>(clock: Clock, promise: Promise<T>, limitMs: number): Promise<Within<T>> {
  return new Promise((resolve) => {
    const timer = clock.setTimer(limitMs, () => resolve({ inTime: false }));
    void promise.then((value) => {
      timer.cancel();
      resolve({ inTime: true, value });
    });
  });
}
