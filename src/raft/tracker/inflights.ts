/**
 * The flow-control window of one follower: the append messages sent but not yet acknowledged.
 */
import { InvalidArgumentError } from "../../common/errors.js";
import { invariant } from "../../common/assert.js";

/** The buffer starts this small: most followers keep up and never fill a large window. */
const INITIAL_BUFFER_SLOTS = 1;

/**
 * Sliding window of in-flight append messages to one peer, bounded by count and by bytes (etcd
 * Inflights). Ring buffer, no per-add allocation once grown. Each slot holds the last entry
 * index of one message and the payload bytes it carried.
 */
export class Inflights {
  /** Slot of the oldest in-flight message. */
  private start = 0;
  private countMessages = 0;
  private totalBytes = 0;
  private readonly capacity: number;
  private readonly maxBytes: number;
  // Two parallel typed arrays instead of an array of objects: no allocation per add, and
  // Float64 holds any index up to MAX_INDEX exactly. They grow lazily up to `capacity`.
  private lastIndexes: Float64Array;
  private sizesBytes: Float64Array;

  /**
   * @param capacity the most messages in flight (etcd MaxInflightMsgs); at least 1.
   * @param maxBytes the most payload bytes in flight; 0 means no byte limit.
   * @throws InvalidArgumentError if capacity is not a positive integer or maxBytes is negative.
   */
  constructor(capacity: number, maxBytes: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError(
        `inflight capacity must be a positive integer, got ${capacity}`,
      );
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new InvalidArgumentError(
        `maxInflightBytes must be a non-negative integer (0 = no limit), got ${maxBytes}`,
      );
    }
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    const slots = Math.min(INITIAL_BUFFER_SLOTS, capacity);
    this.lastIndexes = new Float64Array(slots);
    this.sizesBytes = new Float64Array(slots);
  }

  /**
   * Records a message sent. `lastIndex` is the last entry index of the message and must be
   * larger than that of every message in flight. The caller checks {@link full} first; adding
   * to a full window is a bug (invariant, throws InternalError).
   */
  add(lastIndex: number, bytes: number): void {
    invariant(!this.full(), () => `inflights full (${this.toString()}), cannot add ${lastIndex}`);
    invariant(bytes >= 0, () => `inflight bytes must be non-negative, got ${bytes}`);
    if (this.countMessages > 0) {
      const newest = this.slot(this.countMessages - 1);
      invariant(
        lastIndex > this.lastIndexes[newest]!,
        () => `inflight index ${lastIndex} not above the newest ${this.lastIndexes[newest]}`,
      );
    }
    let next = this.start + this.countMessages;
    if (next >= this.capacity) {
      next -= this.capacity;
    }
    if (next >= this.lastIndexes.length) {
      this.grow();
    }
    this.lastIndexes[next] = lastIndex;
    this.sizesBytes[next] = bytes;
    this.countMessages++;
    this.totalBytes += bytes;
    invariant(this.countMessages <= this.capacity, "inflight count exceeds the window's capacity");
  }

  /** Frees every in-flight message with lastIndex <= `index` (they have been acknowledged). */
  freeLE(index: number): void {
    let slot = this.start;
    let freed = 0;
    let freedBytes = 0;
    while (freed < this.countMessages && this.lastIndexes[slot]! <= index) {
      freedBytes += this.sizesBytes[slot]!;
      freed++;
      slot++;
      if (slot >= this.capacity) {
        slot -= this.capacity;
      }
    }
    if (freed === 0) {
      return;
    }
    this.countMessages -= freed;
    this.totalBytes -= freedBytes;
    // Sizes are integers, so the sum is exact: an empty window holds exactly zero bytes.
    invariant(
      this.totalBytes >= 0 && (this.countMessages > 0 || this.totalBytes === 0),
      () => `inflight bytes out of step with the messages (${this.toString()})`,
    );
    // Rewinding an empty window to slot 0 keeps the buffer from growing when it need not.
    this.start = this.countMessages === 0 ? 0 : slot;
  }

  /**
   * Frees the oldest in-flight message (etcd FreeFirstOne). The leader calls it when a
   * heartbeat response finds the window full: the appends in it may all have been lost, and
   * without a free slot no further append (whose rejection would reveal the gap) is ever sent.
   */
  freeFirstOne(): void {
    if (this.countMessages === 0) return;
    const countBefore = this.countMessages;
    this.freeLE(this.lastIndexes[this.start]!);
    // Indexes in flight strictly increase (add asserts it), so exactly the oldest goes.
    invariant(this.countMessages === countBefore - 1, "freeFirstOne must free exactly one message");
  }

  /** True if no more messages may be sent: count == capacity, or the byte limit is reached. */
  full(): boolean {
    return (
      this.countMessages === this.capacity ||
      (this.maxBytes > 0 && this.totalBytes >= this.maxBytes)
    );
  }

  /** The number of messages in flight. */
  get count(): number {
    return this.countMessages;
  }

  /** The payload bytes in flight. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Forgets every message in flight (on a state change of the progress). */
  reset(): void {
    this.start = 0;
    this.countMessages = 0;
    this.totalBytes = 0;
  }

  /** An independent copy with the same limits and the same messages in flight. */
  clone(): Inflights {
    const copy = new Inflights(this.capacity, this.maxBytes);
    copy.lastIndexes = this.lastIndexes.slice();
    copy.sizesBytes = this.sizesBytes.slice();
    copy.start = this.start;
    copy.countMessages = this.countMessages;
    copy.totalBytes = this.totalBytes;
    return copy;
  }

  /** The last indexes in flight, oldest first (for tests and debugging; allocates). */
  lastIndexesInFlight(): number[] {
    const result: number[] = [];
    for (let i = 0; i < this.countMessages; i++) {
      result.push(this.lastIndexes[this.slot(i)]!);
    }
    return result;
  }

  /** A short description for logs, e.g. `2/256 msgs, 1024 bytes`. */
  toString(): string {
    return `${this.countMessages}/${this.capacity} msgs, ${this.totalBytes} bytes`;
  }

  /** The buffer slot of the i-th oldest message in flight. */
  private slot(i: number): number {
    const slot = this.start + i;
    return slot >= this.capacity ? slot - this.capacity : slot;
  }

  /**
   * Doubles the buffer, up to `capacity`. Only called while the window does not wrap (the next
   * slot lies past the buffer's end), so copying slot for slot keeps every position valid.
   */
  private grow(): void {
    const slots = Math.min(this.lastIndexes.length * 2, this.capacity);
    const lastIndexes = new Float64Array(slots);
    const sizesBytes = new Float64Array(slots);
    lastIndexes.set(this.lastIndexes);
    sizesBytes.set(this.sizesBytes);
    this.lastIndexes = lastIndexes;
    this.sizesBytes = sizesBytes;
  }
}
