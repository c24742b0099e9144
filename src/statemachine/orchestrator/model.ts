/**
 * The orchestrator's replicated model: workers, tasks and VMs, changed only by
 * {@link OrchestratorModel.apply}, read through {@link OrchestratorQueries}. The states,
 * transitions, placement order and limits are written out in `README.md` beside this file.
 */
import { InvalidArgumentError, invariant } from "../../common/index.js";
import type { NodeId } from "../../raft/types.js";
import type { ChangeObserver } from "../changes.js";
import { validationErrorResult, type CommandResult } from "../command-result.js";
import { agentReports, submitTasks } from "./batch-commands.js";
import { readOrchestratorCommand } from "./command-reader.js";
import type { OrchestratorCommand, OrchestratorResult } from "./commands.js";
import { DEFAULT_TASK_LIST_LIMIT, MAX_TASK_LIST_LIMIT } from "./limits.js";
import type { NodeAssignments, OrchestratorQueries, TaskListOptions } from "./queries.js";
import type { SnapshotPart } from "../snapshot-encoding.js";
import {
  captureOrchestratorSnapshot,
  decodeOrchestratorSnapshot,
  encodeOrchestratorSnapshot,
} from "./snapshot.js";
import { OrchestratorState, type OrchestratorStateOptions } from "./state.js";
import { cancelTask, submitTask, taskFinished, taskStarted } from "./task-commands.js";
import {
  TASK_STATUSES,
  type OrchestratorSettings,
  type Task,
  type Vm,
  type Worker,
} from "./types.js";
import { createVm, deleteVm, setVmDesired, vmObserved } from "./vm-commands.js";
import { migrateVm } from "./vm-migration.js";
import {
  drainDeadlineReached,
  markWorkerOffline,
  registerWorker,
  setWorkerDrain,
} from "./worker-commands.js";

function checkLogTime(logTimeMs: number): void {
  invariant(
    Number.isSafeInteger(logTimeMs) && logTimeMs >= 0,
    () => `log time must be a safe integer ≥ 0, got ${logTimeMs}`,
  );
}

/** The replicated orchestrator model. Deterministic: it reads nothing but its state and its input. */
export class OrchestratorModel implements OrchestratorQueries {
  #state: OrchestratorState;
  #observer: ChangeObserver | undefined;

  /**
   * An empty model. `options.referenceScheduler` places by scanning every worker (tests and
   * benches comparing it with the placement index; the decisions are the same).
   */
  constructor(options: OrchestratorStateOptions = {}) {
    this.#state = new OrchestratorState(options);
  }

  /**
   * Reports which workers, tasks and VMs each applied command touched to `observer` (undefined:
   * stop); kept across restores. See `../changes.ts`. Throws nothing.
   */
  observe(observer: ChangeObserver | undefined): void {
    this.#observer = observer;
    this.#state.observer = observer;
  }

  /**
   * Applies one command at log time `logTimeMs` (from the session layer: the largest
   * `proposedAtMs` applied). Never throws for a bad command: a malformed one is an
   * `INVALID_ARGUMENT` or `TOO_LARGE` result, a refused one `NOT_FOUND`, `CONFLICT` or
   * `OVERLOADED`, and an error result leaves the state unchanged. Throws `InternalError` only for
   * a bug (an invariant failed) or a `logTimeMs` that is not a safe integer ≥ 0.
   */
  apply(command: OrchestratorCommand, logTimeMs: number): CommandResult<OrchestratorResult> {
    let valid: OrchestratorCommand;
    try {
      valid = readOrchestratorCommand(command);
    } catch (error) {
      checkLogTime(logTimeMs);
      return validationErrorResult(error);
    }
    return this.#dispatch(valid, logTimeMs);
  }

  /**
   * {@link apply} for a command the byte decoder returned (`decodeOrchestratorCommand` runs the
   * strict reader, which freezes what it read): the same, without reading it a second time (that
   * second read was a third of a batch submit's apply time). A command that is not frozen, so not
   * the reader's, is read as `apply` reads it. Throws as `apply` does.
   */
  applyDecoded(command: OrchestratorCommand, logTimeMs: number): CommandResult<OrchestratorResult> {
    if (!Object.isFrozen(command)) return this.apply(command, logTimeMs);
    return this.#dispatch(command, logTimeMs);
  }

  #dispatch(valid: OrchestratorCommand, logTimeMs: number): CommandResult<OrchestratorResult> {
    checkLogTime(logTimeMs);
    const state = this.#state;
    switch (valid.type) {
      case "registerWorker":
        return registerWorker(state, valid, logTimeMs);
      case "setWorkerDrain":
        return setWorkerDrain(state, valid, logTimeMs);
      case "markWorkerOffline":
        return markWorkerOffline(state, valid, logTimeMs);
      case "drainDeadlineReached":
        return drainDeadlineReached(state, valid, logTimeMs);
      case "submitTask":
        return submitTask(state, valid, logTimeMs);
      case "cancelTask":
        return cancelTask(state, valid, logTimeMs);
      case "taskStarted":
        return taskStarted(state, valid, logTimeMs);
      case "taskFinished":
        return taskFinished(state, valid, logTimeMs);
      case "createVm":
        return createVm(state, valid, logTimeMs);
      case "setVmDesired":
        return setVmDesired(state, valid, logTimeMs);
      case "deleteVm":
        return deleteVm(state, valid, logTimeMs);
      case "migrateVm":
        return migrateVm(state, valid, logTimeMs);
      case "vmObserved":
        return vmObserved(state, valid, logTimeMs);
      case "setSettings":
        state.putSettings(valid.settings);
        return { ok: true, value: { type: "settings", settings: state.settings } };
      case "submitTasks":
        return submitTasks(state, valid, logTimeMs);
      case "agentReports":
        return agentReports(state, valid, logTimeMs);
    }
  }

  /** The whole model as deterministic bytes (see `snapshot.ts`): equal states, equal bytes. Throws nothing. */
  snapshot(): Uint8Array {
    return encodeOrchestratorSnapshot(this.#state);
  }

  /**
   * Captures the model now; the part's bytes are {@link snapshot}'s at this call, encoded a slice
   * at a time while commands keep applying (see `snapshot-view.ts`). Release the part
   * (`SlicedSnapshot` does), or the model keeps replaced entities for it. Throws nothing.
   */
  captureSnapshot(): SnapshotPart {
    return captureOrchestratorSnapshot(this.#state);
  }

  /** Replaces the model with a snapshot's. Throws `InvalidArgumentError` on bad bytes, changing nothing. */
  restore(data: Uint8Array): void {
    this.#state = decodeOrchestratorSnapshot(data, this.#state.options);
    this.#state.observer = this.#observer;
  }

  /** Every registered worker, by ascending node id. */
  workers(): readonly Worker[] {
    return [...this.#state.workers()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** The worker of `nodeId`, or undefined. */
  worker(nodeId: NodeId): Worker | undefined {
    return this.#state.worker(nodeId);
  }

  /** The task `id`, or undefined (never submitted, or finished and since forgotten). */
  task(id: string): Task | undefined {
    return this.#state.taskEntry(id)?.task;
  }

  /**
   * Tasks by ascending id, filtered by status and node, after `after`, at most `limit` (default
   * {@link DEFAULT_TASK_LIST_LIMIT}). Throws `InvalidArgumentError` for a limit outside
   * 1..{@link MAX_TASK_LIST_LIMIT} or an unknown status.
   */
  tasks(options: TaskListOptions = {}): readonly Task[] {
    const limit = options.limit ?? DEFAULT_TASK_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_TASK_LIST_LIMIT) {
      throw new InvalidArgumentError(
        `task list limit must be an integer in 1..${MAX_TASK_LIST_LIMIT}, got ${limit}`,
      );
    }
    if (options.status !== undefined && !TASK_STATUSES.includes(options.status)) {
      throw new InvalidArgumentError(
        `task status must be one of ${TASK_STATUSES.join(", ")}, got ${String(options.status)}`,
      );
    }
    const ids = this.#state.taskIds;
    const found: Task[] = [];
    let position = options.after === undefined ? 0 : ids.lowerBound(options.after);
    if (options.after !== undefined && ids.at(position) === options.after) position++;
    for (; found.length < limit; position++) {
      const id = ids.at(position);
      if (id === undefined) break;
      const task = this.#state.taskEntry(id)?.task as Task;
      if (options.status !== undefined && task.status !== options.status) continue;
      if (options.nodeId !== undefined && task.nodeId !== options.nodeId) continue;
      found.push(task);
    }
    return found;
  }

  /** The VM `name`, or undefined. */
  vm(name: string): Vm | undefined {
    return this.#state.vmEntry(name)?.vm;
  }

  /** Every VM, by ascending name. */
  vms(): readonly Vm[] {
    return [...this.#state.vmNames].map((name) => this.#state.vmEntry(name)?.vm as Vm);
  }

  /** The tasks assigned to or running on `nodeId` (by id) and the VMs placed on it (by name). */
  assignments(nodeId: NodeId): NodeAssignments {
    return {
      tasks: this.#state.tasksOn(nodeId).map((id) => this.#state.taskEntry(id)?.task as Task),
      vms: this.#state.vmsOn(nodeId).map((name) => this.#state.vmEntry(name)?.vm as Vm),
    };
  }

  /** The cluster-wide settings. */
  settings(): OrchestratorSettings {
    return this.#state.settings;
  }

  /** Pending work in placement order, as `task:<id>` and `vm:<name>` (diagnostics and tests). */
  pendingQueue(): readonly string[] {
    return this.#state
      .pendingWork()
      .map((work) => (work.kind === "task" ? `task:${work.id}` : `vm:${work.name}`));
  }
}
