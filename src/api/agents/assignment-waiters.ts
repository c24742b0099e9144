/**
 * The waiting long polls of agents, by node: each waits until its node's assignments change
 * ({@link AssignmentWaiters.wake} with the touched node ids) or its time runs out. Waking costs
 * O(waiters of the touched nodes), never O(all waiters).
 *
 * Limits: a wait lasts at most {@link MAX_AGENT_WAIT_MS}; a node may have at most
 * {@link MAX_WAITERS_PER_NODE} polls waiting (an agent needs one; a few cover a retry that
 * crossed a poll the server has not seen end yet) and a server at most {@link MAX_WAITERS}
 * in all; past either, a poll is refused with OVERLOADED (the agent backs off and retries).
 */
import type { Clock, TimerHandle } from "../../common/clock.js";
import { CancelledError, OverloadedError } from "../../common/errors.js";
import type { NodeId } from "../../raft/types.js";

/** Longest wait of one poll. */
export const MAX_AGENT_WAIT_MS = 30_000;
/** Most polls waiting for one node. */
export const MAX_WAITERS_PER_NODE = 4;
/** Most polls waiting on one server. */
export const MAX_WAITERS = 20_000;

/** How a wait ended. */
export type WaitEnd = "changed" | "timeout";

interface Waiter {
  readonly resolve: (end: WaitEnd) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** Options of {@link AssignmentWaiters}. */
export interface AssignmentWaitersOptions {
  readonly clock: Clock;
  /** Default {@link MAX_WAITERS_PER_NODE}. */
  readonly maxWaitersPerNode?: number;
  /** Default {@link MAX_WAITERS}. */
  readonly maxWaiters?: number;
}

/** See the module comment. */
export class AssignmentWaiters {
  readonly #clock: Clock;
  readonly #maxPerNode: number;
  readonly #max: number;
  readonly #byNode = new Map<NodeId, Set<Waiter>>();
  #count = 0;

  constructor(options: AssignmentWaitersOptions) {
    this.#clock = options.clock;
    this.#maxPerNode = options.maxWaitersPerNode ?? MAX_WAITERS_PER_NODE;
    this.#max = options.maxWaiters ?? MAX_WAITERS;
  }

  /**
   * Waits until {@link wake} names `nodeId` or `waitMs` (capped at {@link MAX_AGENT_WAIT_MS})
   * passes. Rejects with OverloadedError past a limit, CancelledError when `signal` fires.
   */
  wait(nodeId: NodeId, waitMs: number, signal?: AbortSignal): Promise<WaitEnd> {
    if (signal?.aborted === true) return Promise.reject(new CancelledError("the poll went away"));
    let waiters = this.#byNode.get(nodeId);
    if ((waiters?.size ?? 0) >= this.#maxPerNode) {
      return Promise.reject(
        new OverloadedError(
          `node ${nodeId} already has ${this.#maxPerNode} assignment polls waiting here; ` +
            "one agent needs one: is the node id used twice?",
        ),
      );
    }
    if (this.#count >= this.#max) {
      return Promise.reject(
        new OverloadedError(`this server holds ${this.#max} assignment polls; try another server`),
      );
    }
    if (waiters === undefined) {
      waiters = new Set();
      this.#byNode.set(nodeId, waiters);
    }
    const set = waiters;
    return new Promise<WaitEnd>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        timer: this.#clock.setTimer(Math.min(Math.max(0, waitMs), MAX_AGENT_WAIT_MS), () =>
          this.#end(nodeId, set, waiter, "timeout"),
        ),
        onAbort: () => this.#end(nodeId, set, waiter, new CancelledError("the poll went away")),
      };
      set.add(waiter);
      this.#count++;
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
    });
  }

  /** Ends the waits of every node in `nodeIds` with "changed". Throws nothing. */
  wake(nodeIds: Iterable<NodeId>): void {
    for (const nodeId of nodeIds) {
      const set = this.#byNode.get(nodeId);
      if (set === undefined) continue;
      for (const waiter of set) this.#end(nodeId, set, waiter, "changed");
    }
  }

  /** Ends every wait with "changed" (the state was replaced by a snapshot). */
  wakeAll(): void {
    this.wake([...this.#byNode.keys()]);
  }

  /** Polls waiting now, for one node or in all. */
  waiting(nodeId?: NodeId): number {
    return nodeId === undefined ? this.#count : (this.#byNode.get(nodeId)?.size ?? 0);
  }

  /** Ends every wait with CancelledError (the server is closing). */
  close(): void {
    for (const [nodeId, set] of [...this.#byNode]) {
      for (const waiter of set) {
        this.#end(nodeId, set, waiter, new CancelledError("the server is shutting down"));
      }
    }
  }

  #end(nodeId: NodeId, set: Set<Waiter>, waiter: Waiter, end: WaitEnd | Error): void {
    if (!set.delete(waiter)) return;
    this.#count--;
    if (set.size === 0 && this.#byNode.get(nodeId) === set) this.#byNode.delete(nodeId);
    waiter.timer.cancel();
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    if (end instanceof Error) waiter.reject(end);
    else waiter.resolve(end);
  }
}
