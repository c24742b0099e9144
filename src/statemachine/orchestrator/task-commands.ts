/**
 * The task commands: submit, cancel, and the agent's start and finish reports. Private to the
 * orchestrator folder; `model.ts` dispatches to these after validating the command.
 */
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import type { OrchestratorCommand, OrchestratorResult } from "./commands.js";
import { isPlacedTask, isTerminal } from "./entity-reader.js";
import { MAX_ACTIVE_TASKS, MAX_ACTIVE_TASK_SPEC_BYTES } from "./limits.js";
import { placePending, placeTask } from "./placement.js";
import { taskSpecBytes } from "./spec-reader.js";
import type { OrchestratorState } from "./state.js";
import { syntheticResult } from "./synthetic-result.js";
import type { Task, TaskResult } from "./types.js";

type Command<T extends OrchestratorCommand["type"]> = Extract<OrchestratorCommand, { type: T }>;
type Result = CommandResult<OrchestratorResult>;

function taskResult(task: Task): Result {
  return okResult({ type: "task", task });
}

function noSuchTask(id: string): Result {
  return errorResult(
    "NOT_FOUND",
    `task ${id} does not exist (or finished long enough ago to be forgotten)`,
  );
}

/** Submits a task: placed at once when a worker fits it, else pending with the reason. */
export function submitTask(
  state: OrchestratorState,
  command: Command<"submitTask">,
  nowMs: number,
): Result {
  if (state.taskEntry(command.id) !== undefined) {
    return errorResult("CONFLICT", `task id ${command.id} is taken; submit with a new id`);
  }
  const active = state.activeTasks;
  if (active.count >= MAX_ACTIVE_TASKS) {
    return errorResult(
      "OVERLOADED",
      `${active.count} tasks are unfinished, the most allowed; retry once some have finished`,
    );
  }
  if (active.specBytes + taskSpecBytes(command.spec) > MAX_ACTIVE_TASK_SPEC_BYTES) {
    return errorResult(
      "OVERLOADED",
      `unfinished tasks hold ${active.specBytes} bytes of specs, near the limit of ` +
        `${MAX_ACTIVE_TASK_SPEC_BYTES}; retry once some have finished`,
    );
  }
  const task = placeTask(
    state,
    {
      id: command.id,
      spec: command.spec,
      status: "pending",
      nodeId: null,
      attempts: 0,
      result: null,
      cancelRequested: false,
      pendingReason: "waiting to be placed",
      submittedAtMs: nowMs,
      updatedAtMs: nowMs,
    },
    nowMs,
  );
  state.putTask(task, state.takeSeq());
  return taskResult(task);
}

/**
 * Cancels a task: a pending one at once; an assigned or running one is flagged for its agent,
 * which kills it and reports `cancelled`. A finished task cannot be cancelled (CONFLICT).
 */
export function cancelTask(
  state: OrchestratorState,
  command: Command<"cancelTask">,
  nowMs: number,
): Result {
  const task = state.taskEntry(command.id)?.task;
  if (task === undefined) return noSuchTask(command.id);
  if (isTerminal(task.status)) {
    return errorResult(
      "CONFLICT",
      `task ${task.id} already finished (${task.status}); there is nothing to cancel`,
    );
  }
  if (task.status === "pending") {
    const cancelled: Task = {
      ...task,
      status: "cancelled",
      result: syntheticResult("cancelled before it was placed"),
      pendingReason: "",
      updatedAtMs: nowMs,
    };
    state.putTask(cancelled);
    return taskResult(cancelled);
  }
  if (task.cancelRequested) return taskResult(task);
  const flagged: Task = { ...task, cancelRequested: true, updatedAtMs: nowMs };
  state.putTask(flagged);
  return taskResult(flagged);
}

/** Why a report about `attempt` on `nodeId` does not apply to `task` (the report is stale). */
function staleReport(task: Task, nodeId: number, attempt: number): Result {
  const about = `the report about attempt ${attempt} on node ${nodeId} is stale`;
  let where: string;
  if (isTerminal(task.status)) {
    where = `already finished (${task.status} in attempt ${task.attempts} on node ${task.nodeId ?? "none"})`;
  } else if (task.status === "pending") {
    where = `pending, waiting to be placed again after attempt ${task.attempts}`;
  } else {
    where = `${task.status} as attempt ${task.attempts} on node ${task.nodeId ?? "none"}`;
  }
  const advice = isTerminal(task.status) ? "" : "; stop that attempt";
  return errorResult("CONFLICT", `task ${task.id} is ${where}; ${about}${advice}`);
}

function isCurrentAttempt(task: Task, nodeId: number, attempt: number): boolean {
  return task.nodeId === nodeId && task.attempts === attempt;
}

/**
 * An agent started the task: assigned → running, only for the current node and attempt. A
 * repeated report of a running attempt changes nothing; any other report is stale (CONFLICT).
 */
export function taskStarted(
  state: OrchestratorState,
  command: Command<"taskStarted">,
  nowMs: number,
): Result {
  const task = state.taskEntry(command.id)?.task;
  if (task === undefined) return noSuchTask(command.id);
  const current = isCurrentAttempt(task, command.nodeId, command.attempt);
  if (current && task.status === "running") return taskResult(task);
  if (!current || task.status !== "assigned") {
    return staleReport(task, command.nodeId, command.attempt);
  }
  const running: Task = { ...task, status: "running", updatedAtMs: nowMs };
  state.putTask(running);
  return taskResult(running);
}

function resultsEqual(a: TaskResult, b: TaskResult): boolean {
  return (
    a.exitCode === b.exitCode &&
    a.stdout === b.stdout &&
    a.stderr === b.stderr &&
    a.stdoutTruncated === b.stdoutTruncated &&
    a.stderrTruncated === b.stderrTruncated &&
    a.durationMs === b.durationMs &&
    a.error === b.error
  );
}

/**
 * An agent finished an attempt: assigned or running → the outcome, result kept, resources
 * released, pending work placed. `cancelled` only after a cancel was asked for. A repeat of the
 * very report that finished the task changes nothing; any other report is stale (CONFLICT).
 */
export function taskFinished(
  state: OrchestratorState,
  command: Command<"taskFinished">,
  nowMs: number,
): Result {
  const task = state.taskEntry(command.id)?.task;
  if (task === undefined) return noSuchTask(command.id);
  const current = isCurrentAttempt(task, command.nodeId, command.attempt);
  if (
    current &&
    task.status === command.outcome &&
    task.result !== null &&
    resultsEqual(task.result, command.result)
  ) {
    return taskResult(task);
  }
  if (!current || !isPlacedTask(task.status)) {
    return staleReport(task, command.nodeId, command.attempt);
  }
  if (command.outcome === "cancelled" && !task.cancelRequested) {
    return errorResult(
      "CONFLICT",
      `task ${task.id} was not asked to cancel; report its end as failed (with the reason in error)`,
    );
  }
  const finished: Task = {
    ...task,
    status: command.outcome,
    result: command.result,
    updatedAtMs: nowMs,
  };
  state.putTask(finished);
  placePending(state, nowMs);
  return taskResult(finished);
}
