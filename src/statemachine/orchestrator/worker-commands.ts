/**
 * The worker commands: register (and re-register), drain and undrain, mark offline. Private to
 * the orchestrator folder; `model.ts` dispatches to these after validating the command.
 */
import type { NodeId } from "../../raft/types.js";
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import type { OrchestratorCommand, OrchestratorResult } from "./commands.js";
import { MAX_WORKERS } from "./limits.js";
import { placePending } from "./placement.js";
import { ZERO_RESOURCES, describeResources, fitsWithin, resourcesEqual } from "./resources.js";
import { normalizeFeatures } from "./spec-reader.js";
import { taskRequest, vmRequest, type OrchestratorState } from "./state.js";
import { syntheticResult } from "./synthetic-result.js";
import type { Task, Vm, Worker } from "./types.js";
import { rolledBack, withoutMigration } from "./vm-migration.js";

type Command<T extends OrchestratorCommand["type"]> = Extract<OrchestratorCommand, { type: T }>;
type Result = CommandResult<OrchestratorResult>;

function workerResult(state: OrchestratorState, nodeId: NodeId): Result {
  return okResult({ type: "worker", worker: state.worker(nodeId) as Worker });
}

function notRegistered(nodeId: NodeId): Result {
  return errorResult("NOT_FOUND", `worker ${nodeId} is not registered`);
}

/**
 * Why a re-registration would strand placed work, or undefined: the new capacity must still hold
 * the worker's allocation and its features every requirement of the work placed on it.
 */
function strandedWork(
  state: OrchestratorState,
  worker: Worker,
  command: Command<"registerWorker">,
  features: readonly string[],
): string | undefined {
  const nodeId = worker.nodeId;
  if (!fitsWithin(worker.allocated, command.capacity)) {
    return (
      `worker ${nodeId} holds work using ${describeResources(worker.allocated)}, more than the ` +
      `new capacity of ${describeResources(command.capacity)}; drain it and let its work finish ` +
      "(or stop its VMs) before lowering its capacity"
    );
  }
  const requirements: [string, readonly string[]][] = [
    ...state
      .tasksOn(nodeId)
      .map((id): [string, readonly string[]] => [
        `task ${id}`,
        taskRequest(state.taskEntry(id)?.task as Task).requiredFeatures,
      ]),
    ...state
      .vmsOn(nodeId)
      .map((name): [string, readonly string[]] => [
        `VM ${name}`,
        vmRequest(state.vmEntry(name)?.vm as Vm).requiredFeatures,
      ]),
  ];
  for (const [what, required] of requirements) {
    const dropped = required.filter((feature) => !features.includes(feature));
    if (dropped.length > 0) {
      return (
        `${what} on worker ${nodeId} requires ${dropped.join(", ")}, which the new registration ` +
        "drops; drain the worker and let that work finish (or stop it) first"
      );
    }
  }
  return undefined;
}

/**
 * Registers a worker or updates its capacity and features; an offline worker comes back
 * (draining if it was drained). Refused (CONFLICT) if the change would strand placed work.
 */
export function registerWorker(
  state: OrchestratorState,
  command: Command<"registerWorker">,
  nowMs: number,
): Result {
  const features = normalizeFeatures(command.features);
  const previous = state.worker(command.nodeId);
  if (previous === undefined) {
    if (state.workerCount >= MAX_WORKERS) {
      return errorResult(
        "OVERLOADED",
        `${state.workerCount} workers are registered, the most allowed; worker ${command.nodeId} cannot join`,
      );
    }
    state.putWorker({
      nodeId: command.nodeId,
      capacity: command.capacity,
      features,
      status: "online",
      drain: false,
      allocated: ZERO_RESOURCES,
      lastSeenMs: nowMs,
    });
    placePending(state, nowMs);
    return workerResult(state, command.nodeId);
  }
  const stranded = strandedWork(state, previous, command, features);
  if (stranded !== undefined) return errorResult("CONFLICT", stranded);
  // An offline worker holds nothing, so a drained one comes back drained.
  const status =
    previous.status === "offline" ? (previous.drain ? "drained" : "online") : previous.status;
  const changed =
    status !== previous.status ||
    !resourcesEqual(command.capacity, previous.capacity) ||
    features.join("\n") !== previous.features.join("\n");
  state.putWorker({
    ...previous,
    capacity: command.capacity,
    features: changed ? features : previous.features,
    status,
    lastSeenMs: Math.max(previous.lastSeenMs, nowMs),
  });
  if (changed) placePending(state, nowMs);
  return workerResult(state, command.nodeId);
}

/**
 * Drains or undrains a worker. Draining moves its work off in the same apply: each VM desired
 * running goes back to the queue (restarted elsewhere; `migrateVm` moves a VM live, before a
 * drain) and each VM desired stopped is released, and a migration to the worker fails; each assigned task goes back to the queue without spending an attempt (the move was
 * not the task's fault; a task being cancelled is cancelled); each running task too, unless the
 * command gives a deadline: then running tasks may finish where they are until log time passes
 * it, when the leader proposes `drainDeadlineReached` (see {@link drainDeadlineReached}). The
 * queue is then placed on the other workers. A drained worker is `draining` while it holds work
 * and `drained` once it holds none. Draining a draining worker again may bring its deadline
 * forward (no deadline: the rest moves now), never push it back. The result says how much moved.
 * Undraining makes the worker `online` (tasks still running there stay) and places pending work.
 */
export function setWorkerDrain(
  state: OrchestratorState,
  command: Command<"setWorkerDrain">,
  nowMs: number,
): Result {
  const nodeId = command.nodeId;
  const previous = state.worker(nodeId);
  if (previous === undefined) return notRegistered(nodeId);
  if (!command.draining) {
    if (!previous.drain) return workerResult(state, nodeId);
    const { drainDeadlineMs: _cleared, ...rest } = previous;
    const status = previous.status === "offline" ? "offline" : "online";
    state.putWorker({ ...rest, drain: false, status });
    if (status === "online") placePending(state, nowMs);
    return workerResult(state, nodeId);
  }
  const deadlineMs = nowMs + (command.deadlineMs ?? 0);
  if (previous.drain) {
    // Drained already: only a draining worker's deadline can come forward.
    const pending = previous.drainDeadlineMs;
    if (previous.status !== "draining" || (pending !== undefined && pending <= deadlineMs)) {
      return drainResult(state, nodeId, 0, 0);
    }
  } else if (previous.status === "offline") {
    // It holds nothing; the flag waits for its return.
    state.putWorker({ ...previous, drain: true });
    return drainResult(state, nodeId, 0, 0);
  }
  // Draining first, so the pass below cannot place the moved work back on it.
  state.putWorker({ ...previous, drain: true, status: "draining" });
  return moveOff(state, nodeId, nowMs, deadlineMs);
}

/**
 * Moves the work off draining worker `nodeId`: all of it if `deadlineMs` has come (≤ `nowMs`),
 * else all but its running tasks, which stay until `deadlineMs` (recorded on the worker). Then
 * places the queue; the worker is `drained` once it holds nothing.
 */
function moveOff(
  state: OrchestratorState,
  nodeId: NodeId,
  nowMs: number,
  deadlineMs: number,
): Result {
  const now = deadlineMs <= nowMs;
  let tasks = 0;
  let staying = 0;
  for (const id of state.tasksOn(nodeId)) {
    const task = state.taskEntry(id)?.task as Task;
    if (!now && task.status === "running") {
      staying++;
      continue;
    }
    state.putTask(drainedTask(task, nodeId, nowMs));
    tasks++;
  }
  const vms = state.vmsOn(nodeId);
  for (const name of vms) state.putVm(vmOff(state.vmEntry(name)?.vm as Vm, nodeId, nowMs, false));
  const worker = state.worker(nodeId) as Worker;
  if (staying > 0) {
    state.putWorker({ ...worker, drainDeadlineMs: deadlineMs });
  } else {
    // Nothing was moved when it already held nothing: it becomes drained here.
    state.settleDrain(nodeId);
  }
  if (tasks + vms.length > 0) placePending(state, nowMs);
  return drainResult(state, nodeId, tasks, vms.length);
}

/**
 * The leader saw log time pass a draining worker's deadline: the tasks still running there move
 * off as a drain without deadline would have moved them (attempt given back), and the worker is
 * `drained`. Refused (CONFLICT) while log time is before the deadline (the leader tries again);
 * a worker without a pending deadline (drained already, undrained, offline) is left as it is.
 */
export function drainDeadlineReached(
  state: OrchestratorState,
  command: Command<"drainDeadlineReached">,
  nowMs: number,
): Result {
  const nodeId = command.nodeId;
  const worker = state.worker(nodeId);
  if (worker === undefined) return notRegistered(nodeId);
  const deadlineMs = worker.drainDeadlineMs;
  if (deadlineMs === undefined) return drainResult(state, nodeId, 0, 0);
  if (nowMs < deadlineMs) {
    return errorResult(
      "CONFLICT",
      `worker ${nodeId}'s drain deadline is log time ${deadlineMs}, ${deadlineMs - nowMs} ms ` +
        "after this command's; propose it again once the deadline has passed",
    );
  }
  return moveOff(state, nodeId, nowMs, nowMs);
}

function drainResult(state: OrchestratorState, nodeId: NodeId, tasks: number, vms: number): Result {
  return okResult({
    type: "worker",
    worker: state.worker(nodeId) as Worker,
    moved: { tasks, vms },
  });
}

/**
 * The next value of a task moved off a drained worker: back in the queue with its attempt given
 * back (`attempts` counts the placements that count, so the next placement reuses the number),
 * or cancelled if a cancel was pending.
 */
function drainedTask(task: Task, nodeId: NodeId, nowMs: number): Task {
  if (task.cancelRequested) {
    return {
      ...task,
      status: "cancelled",
      result: syntheticResult(
        `cancelled: worker ${nodeId} was drained during attempt ${task.attempts}`,
      ),
      updatedAtMs: nowMs,
    };
  }
  return {
    ...task,
    status: "pending",
    nodeId: null,
    attempts: task.attempts - 1,
    pendingReason: `moved off drained worker ${nodeId} (attempt ${task.attempts} not counted); waiting to be placed`,
    updatedAtMs: nowMs,
  };
}

/** The next value of a task whose node went offline: retried, cancelled or lost. */
function lostTask(task: Task, nodeId: NodeId, nowMs: number): Task {
  const attempt = `attempt ${task.attempts} of ${task.spec.maxAttempts}`;
  if (task.cancelRequested) {
    return {
      ...task,
      status: "cancelled",
      result: syntheticResult(`cancelled: node ${nodeId} went offline during ${attempt}`),
      updatedAtMs: nowMs,
    };
  }
  if (task.attempts < task.spec.maxAttempts) {
    return {
      ...task,
      status: "pending",
      nodeId: null,
      pendingReason: `${attempt} was lost when node ${nodeId} went offline; waiting to be placed`,
      updatedAtMs: nowMs,
    };
  }
  return {
    ...task,
    status: "lost",
    result: syntheticResult(`lost: node ${nodeId} went offline during ${attempt}`),
    updatedAtMs: nowMs,
  };
}

/**
 * The next value of a VM taken off node `nodeId` (drained, or gone offline). A VM migrating to
 * that node stays on its source (the migration failed); one placed there goes back to the queue
 * (a migration from there is abandoned), or is released if it was being stopped. `offline`
 * records the node's loss as the VM's last error.
 */
function vmOff(vm: Vm, nodeId: NodeId, nowMs: number, offline: boolean): Vm {
  if (vm.nodeId !== nodeId) {
    return rolledBack(vm, `node ${nodeId} ${offline ? "went offline" : "was drained"}`, nowMs);
  }
  if (vm.desired === "stopped") {
    return { ...vm, status: "stopped", nodeId: null, updatedAtMs: nowMs };
  }
  return {
    ...withoutMigration(vm),
    status: "pending",
    nodeId: null,
    ...(offline ? { lastError: `node ${nodeId} went offline` } : {}),
    pendingReason: offline
      ? `node ${nodeId} went offline; waiting to be placed elsewhere`
      : `moved off drained worker ${nodeId}; waiting to be placed elsewhere`,
    updatedAtMs: nowMs,
  };
}

/**
 * Marks a worker offline: its tasks are retried elsewhere while attempts remain (else lost; a
 * task being cancelled is cancelled), its VMs move (or are released when desired stopped), and
 * it holds nothing until it registers again. Marking an offline worker again changes nothing.
 */
export function markWorkerOffline(
  state: OrchestratorState,
  command: Command<"markWorkerOffline">,
  nowMs: number,
): Result {
  const nodeId = command.nodeId;
  const previous = state.worker(nodeId);
  if (previous === undefined) return notRegistered(nodeId);
  if (previous.status === "offline") return workerResult(state, nodeId);
  // Offline first, so the pass below cannot place the displaced work back on it. A pending drain
  // deadline goes with the work it was for.
  const { drainDeadlineMs: _lost, ...rest } = previous;
  state.putWorker({ ...rest, status: "offline" });
  for (const id of state.tasksOn(nodeId)) {
    state.putTask(lostTask(state.taskEntry(id)?.task as Task, nodeId, nowMs));
  }
  for (const name of state.vmsOn(nodeId)) {
    state.putVm(vmOff(state.vmEntry(name)?.vm as Vm, nodeId, nowMs, true));
  }
  placePending(state, nowMs);
  return workerResult(state, nodeId);
}
