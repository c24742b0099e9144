/**
 * When the event streams of one change feed read its new entries: at once when the feed was quiet
 * for `intervalMs`, else when `intervalMs` has passed since they last did. Under a steady stream
 * of writes a node applies a small batch every few milliseconds, and each wake-up of a caught-up
 * stream is one socket write: a write syscall (on loopback it also pays for the receiver's side
 * of TCP) that costs far more than the bytes in it. Pacing the wake-ups makes each write carry
 * the events of several batches, for at most `intervalMs` of added delay, and only while writes
 * keep coming (an idle stream's first event goes out in the same turn as before).
 *
 * One pacer serves all the streams of a feed, so they all read the same entries in the same turn
 * and still share one encoding of them (`shared-messages.ts`).
 */
import type { ChangeFeed } from "./change-feed.js";

/** See the module comment. One per feed and interval ({@link pacerOf}). */
class DeliveryPacer {
  readonly #feed: ChangeFeed;
  readonly #intervalMs: number;
  readonly #listeners = new Set<() => void>();
  #unsubscribe: (() => void) | undefined;
  #lastDeliveryMs = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(feed: ChangeFeed, intervalMs: number) {
    this.#feed = feed;
    this.#intervalMs = intervalMs;
  }

  /** Calls `listener` when the streams should read new entries; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    this.#unsubscribe ??= this.#feed.subscribe(() => this.#onRecords());
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size > 0) return;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
    };
  }

  #onRecords(): void {
    // A delivery is already due: it will read these entries too.
    if (this.#timer !== undefined) return;
    const waitMs = this.#lastDeliveryMs + this.#intervalMs - performance.now();
    if (waitMs <= 0) {
      this.#deliver();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#deliver();
    }, waitMs);
  }

  #deliver(): void {
    this.#lastDeliveryMs = performance.now();
    for (const listener of [...this.#listeners]) listener();
  }
}

const pacers = new WeakMap<ChangeFeed, Map<number, DeliveryPacer>>();

/**
 * Subscribes `listener` to `feed`'s new entries (and resets), paced to at most one call per
 * `intervalMs` while entries keep coming (0: after every burst, as `feed.subscribe`). Returns the
 * unsubscribe. Throws nothing.
 */
export function subscribePaced(
  feed: ChangeFeed,
  intervalMs: number,
  listener: () => void,
): () => void {
  if (intervalMs <= 0) return feed.subscribe(listener);
  let byInterval = pacers.get(feed);
  if (byInterval === undefined) {
    byInterval = new Map();
    pacers.set(feed, byInterval);
  }
  let pacer = byInterval.get(intervalMs);
  if (pacer === undefined) {
    pacer = new DeliveryPacer(feed, intervalMs);
    byInterval.set(intervalMs, pacer);
  }
  return pacer.subscribe(listener);
}
