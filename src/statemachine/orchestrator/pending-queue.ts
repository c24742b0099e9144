/**
 * The placement queue, grouped by request shape. Private to the orchestrator folder.
 *
 * A shape is everything placement looks at: resources, required features (implicit ones
 * included) and anti-affinity group. Work of one shape is interchangeable for the scheduler, so a
 * placement pass (`placement.ts`) tries only the oldest item of each shape at a time, and once a
 * shape does not fit, none of its later items can fit in that pass either (a pass only takes
 * capacity): the pass then gives them all the same pending reason.
 *
 * **Shared reasons.** Rewriting the reason of every item of a shape on every pass would cost
 * O(pending) per command, since the reason names figures ("most free: 500 on node 7") that move
 * with every placement. So a shape holds the reason its items share, and an item either
 * *follows* it or holds its own (*explicit*: the reason it was queued with, e.g. "moved off
 * drained worker 3", until the scheduler next looks at its shape). Settling a shape (`settle`)
 * sets the shared reason and makes every item follow it: O(explicit items), not O(items). The
 * state hands out each pending task and VM with its effective reason (`followedReason`), so what
 * readers, results and snapshots see is exactly what rewriting every item would have written.
 *
 * Each shape's items are kept in ascending `seq` in an array with a moving head: new work has the
 * highest seq (appended), placement takes the head (O(1)); only work returning to the queue or
 * cancelled while queued moves elements.
 */
import { invariant } from "../../common/index.js";
import type { PlacementRequest } from "./scheduler.js";

/** One queued piece of work. */
export type PendingWork =
  { readonly kind: "task"; readonly id: string } | { readonly kind: "vm"; readonly name: string };

/** The key of a request's shape. Feature and group names hold no `,` or `|`. */
export function shapeKey(request: PlacementRequest): string {
  const { cpuMillis, memoryMb, diskGb } = request.resources;
  return `${cpuMillis},${memoryMb},${diskGb}|${request.requiredFeatures.join(",")}|${request.antiAffinityGroup}`;
}

/** The position of the first element ≥ `value` in `sorted[from..]`. */
function lowerBound(sorted: readonly number[], from: number, value: number): number {
  let low = from;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as number) < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The queued work of one shape, oldest first. */
export class ShapeQueue {
  /** The reason the following items hold; undefined while no item follows one. */
  reason: string | undefined;
  /** Seqs of the items that hold their own reason (see the module comment). */
  readonly explicit = new Set<number>();
  #seqs: number[] = [];
  #head = 0;

  constructor(
    readonly key: string,
    readonly request: PlacementRequest,
  ) {}

  /** How many items are queued. */
  get size(): number {
    return this.#seqs.length - this.#head;
  }

  /** The oldest item's seq; the queue must not be empty. */
  get firstSeq(): number {
    invariant(this.size > 0, "an empty shape queue has no first seq");
    return this.#seqs[this.#head] as number;
  }

  /** The seqs in ascending order (a copy). */
  seqs(): number[] {
    return this.#seqs.slice(this.#head);
  }

  add(seq: number): void {
    const last = this.#seqs[this.#seqs.length - 1];
    if (this.size === 0 || (last as number) < seq) {
      this.#seqs.push(seq);
      return;
    }
    this.#seqs.splice(lowerBound(this.#seqs, this.#head, seq), 0, seq);
  }

  delete(seq: number): void {
    if (this.#seqs[this.#head] === seq) {
      this.#head++;
      // Compact once the dead prefix is most of the array (amortized O(1) per removal).
      if (this.#head === this.#seqs.length) {
        this.#seqs = [];
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#seqs.length) {
        this.#seqs = this.#seqs.slice(this.#head);
        this.#head = 0;
      }
      return;
    }
    const index = lowerBound(this.#seqs, this.#head, seq);
    invariant(this.#seqs[index] === seq, () => `seq ${seq} is queued in shape ${this.key}`);
    this.#seqs.splice(index, 1);
  }
}

/** See the module comment. */
export class PendingQueue {
  readonly #shapes = new Map<string, ShapeQueue>();
  readonly #work = new Map<number, { readonly work: PendingWork; readonly shape: ShapeQueue }>();

  /** How many items are queued. */
  get size(): number {
    return this.#work.size;
  }

  /** The work queued under `seq`. */
  work(seq: number): PendingWork | undefined {
    return this.#work.get(seq)?.work;
  }

  /** The non-empty shapes, in no particular order. */
  shapes(): IterableIterator<ShapeQueue> {
    return this.#shapes.values();
  }

  /**
   * Queues `work` under `seq` (unique) with its request and the pending reason it holds: it follows
   * its shape's reason if that is the same (or the shape has none yet: then it becomes the shape's
   * reason, which no item follows yet), else it holds its own.
   */
  enqueue(seq: number, work: PendingWork, request: PlacementRequest, reason: string): void {
    invariant(!this.#work.has(seq), () => `seq ${seq} is queued once`);
    const key = shapeKey(request);
    let shape = this.#shapes.get(key);
    if (shape === undefined) {
      shape = new ShapeQueue(key, request);
      this.#shapes.set(key, shape);
    }
    shape.add(seq);
    if (shape.reason === undefined) shape.reason = reason;
    else if (shape.reason !== reason) shape.explicit.add(seq);
    this.#work.set(seq, { work, shape });
  }

  /** Notes that queued item `seq` now holds pending reason `reason`. */
  noteReason(seq: number, reason: string): void {
    const shape = this.#work.get(seq)?.shape;
    invariant(shape !== undefined, () => `seq ${seq} is queued`);
    if (reason === shape.reason) shape.explicit.delete(seq);
    else shape.explicit.add(seq);
  }

  /** The shape item `seq` is queued in, or undefined if it is not queued. */
  shapeOf(seq: number): ShapeQueue | undefined {
    return this.#work.get(seq)?.shape;
  }

  /** The reason queued item `seq` follows, or undefined if it is not queued or holds its own. */
  followedReason(seq: number): string | undefined {
    const item = this.#work.get(seq);
    if (item === undefined || item.shape.explicit.has(seq)) return undefined;
    return item.shape.reason;
  }

  /**
   * Gives every item of `shape` the reason `reason`; returns the seqs of the items that held their
   * own until now (their effective reason may have changed; the others' did if the shared one did).
   */
  settle(shape: ShapeQueue, reason: string): number[] {
    shape.reason = reason;
    if (shape.explicit.size === 0) return [];
    const flipped = [...shape.explicit];
    shape.explicit.clear();
    return flipped;
  }

  /** Removes `seq` from the queue. */
  dequeue(seq: number): void {
    const item = this.#work.get(seq);
    invariant(item !== undefined, () => `seq ${seq} is queued`);
    item.shape.delete(seq);
    item.shape.explicit.delete(seq);
    this.#work.delete(seq);
    if (item.shape.size === 0) this.#shapes.delete(item.shape.key);
  }

  /** Every queued item in ascending seq (diagnostics; O(n log n)). */
  ordered(): PendingWork[] {
    return [...this.#work.keys()]
      .sort((a, b) => a - b)
      .map((seq) => this.#work.get(seq)?.work as PendingWork);
  }
}
