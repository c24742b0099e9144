/**
 * Retrying a write while the disk is full. A write that failed with `ENOSPC` wrote nothing that
 * anyone relies on (its bytes past the durable end are a torn tail at worst, cut by recovery and
 * overwritten by the retry), so it is safe to try again once space is freed; an fsync that
 * failed is not, and never comes here.
 */
import { StorageFullError } from "../common/errors.js";

/** Backoff between attempts while the disk is full. */
export const STORAGE_FULL_RETRY = Object.freeze({
  firstDelayMs: 10,
  maxDelayMs: 1000,
});

/** How {@link retryWhileFull} waits and reports. */
export interface StorageFullRetryOptions {
  /** Waits `delayMs` (a timer for real, the scheduler in a simulation). */
  readonly sleep: (delayMs: number) => Promise<void>;
  /** Called with the error when the first attempt finds the disk full, with undefined when a
   *  later attempt succeeds. Must not throw. */
  readonly onChange?: (error: StorageFullError | undefined) => void;
  /** True once the caller is closing: stop retrying and throw the last error. */
  readonly giveUp?: () => boolean;
}

/**
 * Runs `attempt` until it does not throw {@link StorageFullError}, with a doubling delay
 * between attempts ({@link STORAGE_FULL_RETRY}). Any other error is thrown at once.
 * @throws whatever `attempt` throws, except StorageFullError (unless `giveUp` says so).
 */
export async function retryWhileFull<T>(
  attempt: () => Promise<T>,
  options: StorageFullRetryOptions,
): Promise<T> {
  let delayMs: number = STORAGE_FULL_RETRY.firstDelayMs;
  let full = false;
  for (;;) {
    try {
      const result = await attempt();
      if (full) options.onChange?.(undefined);
      return result;
    } catch (error) {
      if (!(error instanceof StorageFullError) || options.giveUp?.() === true) throw error;
      if (!full) options.onChange?.(error);
      full = true;
      await options.sleep(delayMs);
      delayMs = Math.min(delayMs * 2, STORAGE_FULL_RETRY.maxDelayMs);
    }
  }
}

/** The default `sleep`: a plain timer. */
export function timerSleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}
