/**
 * The port between the HTTP layer and the orchestrator: workers, tasks, VMs and settings in the
 * model's own types. The routes validate and translate JSON; an implementation
 * (`raft-orchestrator-service.ts`) proposes commands and reads the replicated model. Tests may
 * fake it.
 *
 * Writes go to the leader: on a follower they reject with `NotLeaderError` carrying the leader's
 * API address when known, and the HTTP layer forwards the request there, session headers
 * included, exactly as for kv writes. Reads run on any node at the consistency asked for.
 */
import type { NodeId } from "../raft/types.js";
import type { BatchItemOutcome, DrainMoved } from "../statemachine/orchestrator/commands.js";
import type { TaskListOptions } from "../statemachine/orchestrator/queries.js";
import type {
  OrchestratorSettings,
  Task,
  TaskSpec,
  TaskStatus,
  Vm,
  VmDesiredState,
  VmSpec,
  Worker,
} from "../statemachine/orchestrator/types.js";
import type { VmLogChunk, VmLogRequest } from "../orchestrator/drivers/vm-log-reader.js";
import type { CallOptions, ReadOptions, WriteOptions } from "./service.js";
import type { LogSource } from "./events/log-stream.js";

/** A piece of a VM's console log and the node it came from. */
export interface VmLogAnswer extends VmLogChunk {
  readonly nodeId: NodeId;
}

/** What a command did in a VM's guest, and the node that ran it. */
export interface VmExecAnswer {
  readonly nodeId: NodeId;
  readonly exitCode: number;
  readonly output: string;
  readonly truncated: boolean;
}

/** Filters and paging of {@link OrchestratorService.listTasks}. */
export type TaskFilters = TaskListOptions;

/** One page of tasks in id order. */
export interface TaskPage {
  readonly tasks: readonly Task[];
  /** More tasks match after the last one returned. */
  readonly more: boolean;
}

/** Options of {@link OrchestratorService.waitTask}. */
export interface WaitTaskOptions {
  /**
   * How long to wait for the task to end. Unlike a call's deadline, running out is not an
   * error: the wait resolves with the task as it is then.
   */
  readonly timeoutMs: number;
  /** Cancels the wait: it rejects with `CancelledError`. */
  readonly signal?: AbortSignal;
  /** How fresh the first look at the task must be. Default `linearizable`. */
  readonly consistency?: ReadOptions["consistency"];
}

/** The captured output of a task's last ended attempt. */
export interface TaskLogs {
  readonly id: string;
  readonly status: TaskStatus;
  /** An attempt has ended and reported output; false before that (the fields are then empty). */
  readonly available: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
}

/** What an applied report answers: for an `agentReports` batch, one outcome per report. */
export interface ReportAnswer {
  /** The batch's outcomes, in the order of its reports; absent for a single report. */
  readonly items?: readonly BatchItemOutcome[];
}

/** Options of {@link OrchestratorService.drainWorker}. */
export interface DrainOptions extends WriteOptions {
  /**
   * Drain only: how long tasks already running may stay to finish, in ms from when the drain is
   * applied; absent or 0 moves them at once.
   */
  readonly deadlineMs?: number;
}

/**
 * Everything the API asks of the orchestrator. Every method may reject with the runtime's typed
 * errors (`NOT_LEADER`, `TIMEOUT`, `CANCELLED`, `OVERLOADED`, `UNAVAILABLE`, …); the ones named
 * below are those of the method itself.
 */
export interface OrchestratorService {
  /** Every registered worker, by node id. */
  /**
   * Proposes an agent's report (`registerWorker`, `taskStarted`, `taskFinished`, `vmObserved`,
   * or many of one node in one `agentReports` batch) or the liveness monitor's
   * `markWorkerOffline`; other commands have their own methods. Resolves once applied; for a
   * batch with one outcome per report (`items`, in order). `INVALID_ARGUMENT` for anything else
   * or a malformed command, and for a batch while not every member can apply one (a rolling
   * upgrade: send the reports one by one).
   */
  report(command: unknown, options?: WriteOptions): Promise<ReportAnswer>;
  /** Every registered worker. */
  listWorkers(options?: ReadOptions): Promise<readonly Worker[]>;
  /** One worker. `NotFoundError` if node `nodeId` never registered. */
  getWorker(nodeId: NodeId, options?: ReadOptions): Promise<Worker>;
  /**
   * Drains a worker (nothing new is placed on it, its VMs and assigned tasks are moved to other
   * workers at once, its running tasks too unless `options.deadlineMs` lets them finish there
   * until then; `moved` counts what moved now) or puts it back in service (`moved` is 0 and 0).
   * `NotFoundError` if it never registered; `InvalidArgumentError` for a deadline out of range
   * or on an undrain.
   */
  drainWorker(
    nodeId: NodeId,
    draining: boolean,
    options?: DrainOptions,
  ): Promise<{ readonly worker: Worker; readonly moved: DrainMoved }>;

  /**
   * Submits a task under a new id chosen here; resolves with the task as applied (placed, or
   * pending with a reason). `InvalidArgumentError` for a bad spec.
   */
  submitTask(spec: TaskSpec, options?: WriteOptions): Promise<Task>;
  /**
   * Submits tasks in one log entry (`submitTasks`), each under a new id chosen here, in order;
   * resolves with one outcome per spec (placed, pending with its reason, or refused on its own,
   * e.g. `OVERLOADED` past the unfinished-task bound). `InvalidArgumentError` for any bad spec
   * (nothing is submitted), `TooLargeError` past the batch bounds.
   */
  submitTasks(
    specs: readonly TaskSpec[],
    options?: WriteOptions,
  ): Promise<readonly BatchItemOutcome[]>;
  /** One task. `NotFoundError` if there is no task `id`. */
  getTask(id: string, options?: ReadOptions): Promise<Task>;
  /** One page of tasks in id order, filtered. `InvalidArgumentError` for a bad limit. */
  listTasks(filters: TaskFilters, options?: ReadOptions): Promise<TaskPage>;
  /**
   * Cancels a task: a pending one ends at once; an assigned or running one is flagged
   * (`cancelRequested`) and its agent kills it and reports it cancelled. `NotFoundError` if there
   * is no task `id`, `ConflictError` if it has already ended.
   */
  cancelTask(id: string, options?: WriteOptions): Promise<Task>;
  /**
   * Long-poll: resolves with the task once it is terminal, or with the task as it is when
   * `timeoutMs` has passed. `NotFoundError` if there is no task `id`; `CancelledError` if the
   * signal fires.
   */
  waitTask(id: string, options: WaitTaskOptions): Promise<Task>;
  /** The output of the task's last ended attempt. `NotFoundError` if there is no task `id`. */
  taskLogs(id: string, options?: ReadOptions): Promise<TaskLogs>;
  /**
   * Follows task `id`'s output on the node that runs it (`ServedByOtherNodeError` elsewhere)
   * until it ends (see `events/task-log-follow.ts`). `NotFoundError` if there is no task `id`.
   * Optional: a service without it answers UNAVAILABLE.
   */
  followTaskLog?(id: string, options?: ReadOptions): Promise<LogSource>;

  /**
   * Creates a VM. `InvalidArgumentError` for a bad name or spec, `ConflictError` if the name is
   * taken.
   */
  createVm(
    name: string,
    spec: VmSpec,
    desired: VmDesiredState,
    options?: WriteOptions,
  ): Promise<Vm>;
  /** One VM. `NotFoundError` if there is no VM `name`. */
  getVm(name: string, options?: ReadOptions): Promise<Vm>;
  /**
   * A piece of VM `name`'s console log, from the node that runs it (a service on another node
   * throws `ServedByOtherNodeError` and the server forwards). `NotFoundError` if there is no VM
   * `name` or no log of it here. Optional: a service without logs answers UNAVAILABLE.
   */
  vmLog?(name: string, request: VmLogRequest, options?: CallOptions): Promise<VmLogAnswer>;
  /**
   * Follows VM `name`'s console log on the node that runs it (`ServedByOtherNodeError`
   * elsewhere): the last `tailLines` lines, then what is written (see `events/vm-log-follow.ts`).
   * `NotFoundError` as {@link vmLog}. Optional: a service without logs answers UNAVAILABLE.
   */
  followVmLog?(
    name: string,
    request: { readonly tailLines?: number },
    options?: CallOptions,
  ): Promise<LogSource>;
  /**
   * Runs `request.command` in VM `name`'s guest through the guest agent, on the node that runs
   * it (`ServedByOtherNodeError` elsewhere). `NotFoundError` if there is no VM `name`;
   * `InvalidArgumentError` for a process VM or a timeout the request's deadline cannot hold;
   * `ConflictError` when it runs nowhere; UNAVAILABLE or TIMEOUT from the guest's channel.
   * Optional: a service without it answers UNAVAILABLE.
   */
  execInVm?(
    name: string,
    request: { readonly command: string; readonly timeoutMs?: number },
    options?: CallOptions,
  ): Promise<VmExecAnswer>;
  /** Every VM, by name. */
  listVms(options?: ReadOptions): Promise<readonly Vm[]>;
  /** Sets the VM's desired state to running. `NotFoundError` if there is no VM `name`. */
  startVm(name: string, options?: WriteOptions): Promise<Vm>;
  /** Sets the VM's desired state to stopped. `NotFoundError` if there is no VM `name`. */
  stopVm(name: string, options?: WriteOptions): Promise<Vm>;
  /** Deletes a VM (its agent stops it). `NotFoundError` if there is no VM `name`. */
  deleteVm(name: string, options?: WriteOptions): Promise<void>;
  /**
   * Starts a live migration of a running qemu VM to node `targetNodeId` (or one the scheduler
   * picks); returns the VM `migrating`. `NotFoundError`, `InvalidArgumentError`, `ConflictError`
   * as the model refuses it (see `statemachine/orchestrator/vm-migration.ts`).
   */
  migrateVm(name: string, targetNodeId: number | undefined, options?: WriteOptions): Promise<Vm>;

  /** The cluster's orchestrator settings. */
  getSettings(options?: ReadOptions): Promise<OrchestratorSettings>;
  /** Replaces the cluster's orchestrator settings. */
  setSettings(
    settings: OrchestratorSettings,
    options?: WriteOptions,
  ): Promise<OrchestratorSettings>;
}
