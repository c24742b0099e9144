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
 * without a pass: the queue ahead of it could not use the capacity anyway.
 */
import { choosePlacement, type PlacementDecision, type PlacementRequest } from "./scheduler.js";
import { taskRequest, vmRequest, type OrchestratorState } from "./state.js";
import type { Task, Vm } from "./types.js";

function decide(state: OrchestratorState, request: PlacementRequest): PlacementDecision {
  return choosePlacement(request, {
    workers: state.workers(),
    groupNodes: state.groupNodes,
    strategy: state.settings.placement,
  });
}

/**
 * The next value of a pending task: assigned to the chosen worker (one more attempt) at log time
 * `nowMs`, or still pending with the reason why not. Does not change the state. Throws nothing.
 */
export function placeTask(state: OrchestratorState, task: Task, nowMs: number): Task {
  const decision = decide(state, taskRequest(task));
  if (!decision.placed) return { ...task, pendingReason: decision.reason };
  return {
    ...task,
    status: "assigned",
    nodeId: decision.nodeId,
    attempts: task.attempts + 1,
    pendingReason: "",
    updatedAtMs: nowMs,
  };
}

/** The next value of a pending VM: scheduled on the chosen worker, or pending with the reason. Throws nothing. */
export function placeVm(state: OrchestratorState, vm: Vm, nowMs: number): Vm {
  const decision = decide(state, vmRequest(vm));
  if (!decision.placed) return { ...vm, pendingReason: decision.reason };
  return {
    ...vm,
    status: "scheduled",
    nodeId: decision.nodeId,
    pendingReason: "",
    updatedAtMs: nowMs,
  };
}

/**
 * Tries to place all pending work, in placement order (see above), refreshing the pending reason
 * of what stays. Throws nothing.
 */
export function placePending(state: OrchestratorState, nowMs: number): void {
  for (const work of state.pendingWork()) {
    if (work.kind === "task") {
      const task = state.taskEntry(work.id)?.task as Task;
      const next = placeTask(state, task, nowMs);
      if (next.status !== task.status || next.pendingReason !== task.pendingReason) {
        state.putTask(next);
      }
    } else {
      const vm = state.vmEntry(work.name)?.vm as Vm;
      const next = placeVm(state, vm, nowMs);
      if (next.status !== vm.status || next.pendingReason !== vm.pendingReason) state.putVm(next);
    }
  }
}
