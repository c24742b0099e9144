/**
 * The encoded SSE messages of one node's streams, shared between streams that would write the
 * same bytes: streams with the same filter (say 64 kv watchers of one prefix) that are caught up
 * all read the same new entries in the same event-loop turn (the change feed wakes them one after
 * another), so the first one encodes the message and the others write its bytes as they are.
 *
 * Bounded: an entry lives until the end of the event-loop turn it was made in, and at most
 * {@link MAX_SHARED_MESSAGE_BYTES} are held at once (past that, messages are not kept and each
 * stream encodes its own, as it would without sharing).
 */

/** Bytes of messages held at once, at most. */
export const MAX_SHARED_MESSAGE_BYTES = 8 * 1024 * 1024;

/** See the module comment. One per change feed. */
export class SharedMessages {
  readonly #messages = new Map<string, Buffer>();
  #bytes = 0;
  #clearScheduled = false;

  /** The bytes kept under `key` this turn, if any. Throws nothing. */
  get(key: string): Buffer | undefined {
    return this.#messages.get(key);
  }

  /** Keeps `bytes` under `key` until the end of this event-loop turn (if within the bound). */
  set(key: string, bytes: Buffer): void {
    if (this.#bytes + bytes.length > MAX_SHARED_MESSAGE_BYTES) return;
    this.#messages.set(key, bytes);
    this.#bytes += bytes.length;
    if (this.#clearScheduled) return;
    this.#clearScheduled = true;
    setImmediate(() => {
      this.#clearScheduled = false;
      this.#messages.clear();
      this.#bytes = 0;
    });
  }
}
