/**
 * Placing work through the scheduler. Private to the orchestrator folder.
 *
 * **Placement order.** Every task and VM takes a sequence number when it is created (`seq`, one
 * counter for both), and pending work is placed in ascending `seq`: first come, first placed,
 * whether task or VM, and work that comes back to the queue (a lost task, a VM moved off a dead
 * worker) keeps its seq and so goes ahead of everything created after it. A pass does not stop
 * at work that does not fit: it goes on and places later, smaller work (backfilling), because a
 * request no worker can meet (a missing feature) must not block the whole queue. The price is
 * that a big request can wait while small ones keep taking the capacity it needs.
 *
 * **When.** A pass runs after every command that can make pending work placeable: a worker
 * registers or comes back online or changes capacity or features, a drain ends, work finishes or
 * is released, a worker goes offline (its work rejoins the queue). So after every command no
 * pending work is placeable, and new work (a submit, a create, a start) can be placed at once
 * without a pass: the queue ahead of it could not use the capacity anyway. A batch command
 * (`agentReports`) defers the passes its items ask for to one pass at its end.
 *
 * **Cost.** A pass takes capacity and never gives any back, so work that does not fit stays
 * unplaceable for the rest of the pass, and so does every later item of the same request shape
 * (`pending-queue.ts`). The pass therefore walks the shapes, not the items: a heap of shapes by
 * their oldest seq yields the next item in global seq order; a placed item makes way for the
 * next of its shape, a shape that does not fit leaves the heap and all its items get that
 * reason, shared through the shape (`pending-queue.ts`), so not one write per item. A pass costs
 * O(S log S + placed · (log S + placement)) for S pending shapes, plus the items that held a
 * reason of their own; placements are exactly those of an item-by-item pass. The reason of a
 * shape is the one computed when it stopped fitting (only "most free" figures may have dropped
 * since, as work of other shapes was placed later in the pass).
 */
import { invariant } from "../../common/index.js";
import type { NodeId } from "../../raft/types.js";
import type { ShapeQueue } from "./pending-queue.js";
import type { PlacementDecision, PlacementRequest } from "./scheduler.js";
import { taskRequest, vmRequest, type OrchestratorState } from "./state.js";
import type { Task, Vm } from "./types.js";

function decide(state: OrchestratorState, request: PlacementRequest): PlacementDecision {
  return state.choosePlacement(request);
}

/**
 * The next value of a pending task: assigned to the chosen worker (one more attempt) at log time
 * `nowMs`, or still pending with the reason why not. Does not change the state. Throws nothing.
 */
export function placeTask(state: OrchestratorState, task: Task, nowMs: number): Task {
  const decision = decide(state, taskRequest(task));
  if (!decision.placed) return { ...task, pendingReason: decision.reason };
  return assignedTask(task, decision.nodeId, nowMs);
}

function assignedTask(task: Task, nodeId: NodeId, nowMs: number): Task {
  return {
    ...task,
    status: "assigned",
    nodeId,
    attempts: task.attempts + 1,
    pendingReason: "",
    updatedAtMs: nowMs,
  };
}

/** The next value of a pending VM: scheduled on the chosen worker, or pending with the reason. Throws nothing. */
export function placeVm(state: OrchestratorState, vm: Vm, nowMs: number): Vm {
  const decision = decide(state, vmRequest(vm));
  if (!decision.placed) return { ...vm, pendingReason: decision.reason };
  return scheduledVm(vm, decision.nodeId, nowMs);
}

function scheduledVm(vm: Vm, nodeId: NodeId, nowMs: number): Vm {
  return { ...vm, status: "scheduled", nodeId, pendingReason: "", updatedAtMs: nowMs };
}

/** A binary min-heap of shapes by their oldest seq (the pass's merge of the shape queues). */
class ShapeHeap {
  readonly #items: ShapeQueue[] = [];

  constructor(shapes: Iterable<ShapeQueue>) {
    for (const shape of shapes) this.#items.push(shape);
    for (let i = (this.#items.length >>> 1) - 1; i >= 0; i--) this.#down(i);
  }

  /** The shape holding the oldest queued item, or undefined when empty. */
  get top(): ShapeQueue | undefined {
    return this.#items[0];
  }

  /** Removes the top shape. */
  pop(): void {
    const last = this.#items.pop();
    if (last !== undefined && this.#items.length > 0) {
      this.#items[0] = last;
      this.#down(0);
    }
  }

  /** Restores the order after the top shape's oldest item changed (it only grows). */
  topChanged(): void {
    this.#down(0);
  }

  #down(index: number): void {
    const items = this.#items;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) return;
      const right = left + 1;
      let smallest = left;
      if (
        right < items.length &&
        (items[right] as ShapeQueue).firstSeq < (items[left] as ShapeQueue).firstSeq
      ) {
        smallest = right;
      }
      if ((items[index] as ShapeQueue).firstSeq <= (items[smallest] as ShapeQueue).firstSeq) return;
      const swap = items[index] as ShapeQueue;
      items[index] = items[smallest] as ShapeQueue;
      items[smallest] = swap;
      index = smallest;
    }
  }
}

/**
 * Tries to place all pending work, in placement order (see above), refreshing the pending reason
 * of what stays. Inside a deferring batch it only notes that a pass is wanted. Throws nothing.
 */
export function placePending(state: OrchestratorState, nowMs: number): void {
  if (state.passDeferrals > 0) {
    state.passWanted = true;
    return;
  }
  const heap = new ShapeHeap(state.pendingShapes());
  for (let shape = heap.top; shape !== undefined; shape = heap.top) {
    const decision = decide(state, shape.request);
    if (!decision.placed) {
      heap.pop();
      state.settleShape(shape, decision.reason);
      continue;
    }
    const work = state.pendingAt(shape.firstSeq);
    invariant(work !== undefined, "a shape's first seq is queued");
    if (work.kind === "task") {
      const task = state.taskEntry(work.id)?.task as Task;
      state.putTask(assignedTask(task, decision.nodeId, nowMs));
    } else {
      const vm = state.vmEntry(work.name)?.vm as Vm;
      state.putVm(scheduledVm(vm, decision.nodeId, nowMs));
    }
    // Placing dequeued the item; an emptied shape is gone from the queue.
    if (shape.size === 0) heap.pop();
    else heap.topChanged();
  }
}

/**
 * Runs `body` with placement passes deferred: the passes its commands ask for become one pass at
 * the end (if any was asked for). For batch commands. Throws what `body` throws.
 */
export function withOnePass<T>(state: OrchestratorState, nowMs: number, body: () => T): T {
  state.passDeferrals++;
  let result: T;
  try {
    result = body();
  } finally {
    state.passDeferrals--;
  }
  if (state.passDeferrals === 0 && state.passWanted) {
    state.passWanted = false;
    placePending(state, nowMs);
  }
  return result;
}
