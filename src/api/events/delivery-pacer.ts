/**
 * When the event streams of one change feed read its new entries: at once when the feed was quiet
 * for the interval, else when the interval has passed since they last did. Under a steady stream
 * of writes a node applies a small batch every few milliseconds, and each wake-up of a caught-up
 * stream is one socket write: a write syscall (on loopback it also pays for the receiver's side
 * of TCP) that costs far more than the bytes in it (~30–40 µs of CPU a write on the 2-core
 * benchmark machine, whatever its size up to 20 KB). Pacing the wake-ups makes each write carry
 * the events of several batches, for a bounded added delay, and only while writes keep coming
 * (an idle stream's first event goes out in the same turn as before).
 *
 * The interval grows with the number of streams: each wake-up costs one write per stream, so a
 * fixed interval would make the CPU a node spends on writes grow with its watchers. It is
 * `intervalMs` (the floor), or the time it takes to spend {@link STREAM_WRITES_PER_SECOND} on
 * the node's streams, whichever is longer, and never more than {@link MAX_DELIVERY_INTERVAL_MS}
 * (beyond that, latency matters more: the writes then grow with the streams again).
 *
 * One pacer serves all the streams of a feed, so they all read the same entries in the same turn
 * and still share one encoding of them (`shared-messages.ts`).
 */
import type { ChangeFeed } from "./change-feed.js";

/**
 * Socket writes per second a node's paced streams make together under sustained writes, at most
 * (while the stream-scaled interval is below {@link MAX_DELIVERY_INTERVAL_MS}): about 4% of a
 * core at the cost measured above. 21 streams wake every 21 ms, 64 every 64 ms.
 */
export const STREAM_WRITES_PER_SECOND = 1_000;
/** The longest interval the number of streams can stretch the wake-ups to, in ms. */
export const MAX_DELIVERY_INTERVAL_MS = 100;

/** See the module comment. One per feed and interval ({@link subscribePaced}). */
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
    const waitMs =
      this.#lastDeliveryMs +
      pacedIntervalMs(this.#intervalMs, this.#listeners.size) -
      performance.now();
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

/**
 * The interval between wake-ups of `streams` streams under sustained writes, in ms: see the
 * module comment. Throws nothing.
 */
export function pacedIntervalMs(floorMs: number, streams: number): number {
  const budgetMs = (streams * 1000) / STREAM_WRITES_PER_SECOND;
  return Math.max(floorMs, Math.min(MAX_DELIVERY_INTERVAL_MS, budgetMs));
}

const pacers = new WeakMap<ChangeFeed, Map<number, DeliveryPacer>>();

/**
 * Subscribes `listener` to `feed`'s new entries (and resets), paced to at most one call per
 * interval while entries keep coming: `intervalMs`, or longer with many streams (see the module
 * comment); 0: after every burst, as `feed.subscribe`. Returns the unsubscribe. Throws nothing.
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
