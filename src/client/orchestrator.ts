/**
 * The orchestrator part of the SDK: workers, tasks, VMs and settings, reached as
 * `client.orchestrator`. Reads go out as idempotent calls and writes with the client's automatic
 * session, through the same leader discovery and retries as kv calls, so a retried submit
 * creates one task, not two.
 */
import { CancelledError, InvalidArgumentError, TimeoutError } from "../common/errors.js";
import {
  DEFAULT_WAIT_MS,
  type CreateVmBody,
  type OrchestratorSettingsJson,
  type ReportResponse,
  type SubmitTasksResponse,
  type TaskJson,
  type TaskListResponse,
  type TaskLogsResponse,
  type DrainedWorkerJson,
  type TaskSpecRequest,
  type TaskStatusJson,
  type TaskWaitResponse,
  type VmExecResponse,
  type VmJson,
  type VmLogResponse,
  type VmSpecRequest,
  type VmsResponse,
  type WorkerJson,
  type WorkersResponse,
} from "../api/schema/index.js";
import type { HttpRequest } from "./http.js";
import {
  followTaskLog,
  followVmLog,
  type FollowOptions,
  type TaskLogEvent,
  type VmLogEvent,
} from "./log-follow.js";
import type { StreamTransport } from "./streams.js";
import type { ReadRequestOptions, RequestOptions } from "./types.js";

export type {
  OrchestratorSettingsJson as OrchestratorSettings,
  TaskJson as Task,
  TaskLogsResponse as TaskLogs,
  TaskSpecRequest as TaskSpecInput,
  TaskStatusJson as TaskStatus,
  TaskWaitResponse as TaskPoll,
  VmExecResponse as VmExecResult,
  VmJson as Vm,
  VmLogResponse as VmLog,
  VmSpecRequest as VmSpecInput,
  WorkerJson as Worker,
  DrainedWorkerJson as DrainedWorker,
};

export { TASK_STATUS_VALUES } from "../api/schema/orchestrator.js";

/** The extra time a long-poll's HTTP call gets beyond the poll itself (for the answer to come back). */
export const POLL_SLACK_MS = 5000;

/** How the orchestrator client sends requests: the {@link BlixardClient}'s own machinery. */
export interface OrchestratorTransport {
  /** An idempotent call: retried on any transient failure. */
  read(request: HttpRequest, options: RequestOptions): Promise<unknown>;
  /** A write under the client's session: retried with the same sequence, applied once. */
  write(request: HttpRequest, options: RequestOptions): Promise<unknown>;
  /**
   * A call that is not idempotent and has no session (running a command in a guest): retried
   * only when it surely did not reach a node. Absent: such calls are refused.
   */
  once?(request: HttpRequest, options: RequestOptions): Promise<unknown>;
  /** How long-lived streams (followed logs) reach the cluster (the BlixardClient's always do). */
  stream?(): StreamTransport;
}

/** Options of {@link OrchestratorClient.listTasks}. */
export interface TaskListOptions extends ReadRequestOptions {
  readonly status?: TaskStatusJson;
  readonly nodeId?: number;
  /** Tasks whose id sorts after this one: the previous page's `nextAfter`. */
  readonly after?: string;
  /** At most this many (1..1000; default 100). */
  readonly limit?: number;
}

/** Options of {@link OrchestratorClient.drainWorker}. */
export interface DrainRequestOptions extends RequestOptions {
  /**
   * Let tasks already running finish on the worker for up to this many ms, then move them.
   * Default 0: move them now.
   */
  readonly deadlineMs?: number;
}

/** Options of {@link OrchestratorClient.waitTask}. */
export interface WaitTaskOptions {
  /** Give up with `TimeoutError` after this long. Default: wait as long as it takes. */
  readonly timeoutMs?: number;
  /** Cancels the wait (`CancelledError`). */
  readonly signal?: AbortSignal;
  /** The longest single long-poll; the node caps it with its request deadline. Default 30 s. */
  readonly pollMs?: number;
  /** Called with the task each time a long-poll ends before the task did. */
  readonly onProgress?: (task: TaskJson) => void;
  /** How fresh each look must be. Default `linearizable`. */
  readonly consistency?: ReadRequestOptions["consistency"];
}

/** Options of {@link OrchestratorClient.createVm}. */
export interface CreateVmOptions extends RequestOptions {
  /** Default `running`. */
  readonly desired?: "running" | "stopped";
}

const enc = encodeURIComponent;

/** Time an exec call allows beyond the command's own timeout: the answer's way back. */
const EXEC_SLACK_MS = 5000;
/** The shortest deadline of an exec call (the node caps it with its own request deadline). */
const EXEC_CALL_FLOOR_MS = 10_000;

function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined) params.set(name, String(value));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/** The orchestrator calls of a Blixard client. Safe to share; calls may run concurrently. */
export class OrchestratorClient {
  readonly #transport: OrchestratorTransport;

  /** @param transport how to send requests (the owning client's). Throws nothing. */
  constructor(transport: OrchestratorTransport) {
    this.#transport = transport;
  }

  #streams(): StreamTransport {
    const stream = this.#transport.stream;
    if (stream === undefined) throw new InvalidArgumentError("this client cannot follow logs");
    return stream.call(this.#transport);
  }

  // ---------------------------------------------------------------------------------------------
  // Workers

  /** Every registered worker, by node id. */
  async listWorkers(options: ReadRequestOptions = {}): Promise<WorkerJson[]> {
    const body = (await this.#read(
      `/v1/workers${query({ consistency: options.consistency })}`,
      options,
    )) as WorkersResponse;
    return body.workers;
  }

  /** One worker. @throws NotFoundError if node `nodeId` never registered. */
  async getWorker(nodeId: number, options: ReadRequestOptions = {}): Promise<WorkerJson> {
    return (await this.#read(
      `/v1/workers/${nodeId}${query({ consistency: options.consistency })}`,
      options,
    )) as WorkerJson;
  }

  /**
   * Hands an agent's report (an orchestrator command as JSON) to the cluster; for node agents.
   * Resolves once applied; an `agentReports` batch with `items`, one outcome per report.
   * Rejects with the model's typed error (e.g. CONFLICT for a stale report), and a batch with
   * InvalidArgumentError while not every member can apply one (send the reports one by one).
   */
  async report(
    command: { readonly type: string },
    options: RequestOptions = {},
  ): Promise<ReportResponse> {
    return (await this.#write("POST", "/v1/agent/reports", { command }, options)) as ReportResponse;
  }

  /**
   * Drains a worker: nothing new is placed on it and its VMs and tasks move to other workers;
   * `moved` counts what moved now. With `options.deadlineMs`, tasks already running may finish
   * on it until then and are moved at the deadline (no attempt spent either way). The worker is
   * `draining` while it holds work, `drained` once it holds none (see {@link getWorker}).
   * @throws NotFoundError for an unknown node; InvalidArgumentError for a deadline out of range.
   */
  async drainWorker(nodeId: number, options: DrainRequestOptions = {}): Promise<DrainedWorkerJson> {
    return (await this.#write(
      "POST",
      `/v1/workers/${nodeId}/drain${query({ deadlineMs: options.deadlineMs })}`,
      undefined,
      options,
    )) as DrainedWorkerJson;
  }

  /** Puts a drained worker back in service. @throws NotFoundError for an unknown node. */
  async undrainWorker(nodeId: number, options: RequestOptions = {}): Promise<WorkerJson> {
    return (await this.#write(
      "POST",
      `/v1/workers/${nodeId}/undrain`,
      undefined,
      options,
    )) as WorkerJson;
  }

  // ---------------------------------------------------------------------------------------------
  // Tasks

  /**
   * Submits a task, exactly once; resolves with it (its `id` included) once applied.
   * @throws InvalidArgumentError for a bad spec, TooLargeError for a huge one.
   */
  async submitTask(spec: TaskSpecRequest, options: RequestOptions = {}): Promise<TaskJson> {
    return (await this.#write("POST", "/v1/tasks", { spec }, options)) as TaskJson;
  }

  /**
   * Submits tasks in one log entry, exactly once; resolves with one outcome per spec, in order
   * (its new `id`, and where it went or why it was refused: a refused item changed nothing).
   * @throws InvalidArgumentError for any bad spec (nothing is submitted), TooLargeError past
   * the batch bounds.
   */
  async submitTasks(
    specs: readonly TaskSpecRequest[],
    options: RequestOptions = {},
  ): Promise<SubmitTasksResponse> {
    return (await this.#write(
      "POST",
      "/v1/tasks/batch",
      { specs },
      options,
    )) as SubmitTasksResponse;
  }

  /** One task. @throws NotFoundError if there is no task `id`. */
  async getTask(id: string, options: ReadRequestOptions = {}): Promise<TaskJson> {
    return (await this.#read(
      `/v1/tasks/${enc(id)}${query({ consistency: options.consistency })}`,
      options,
    )) as TaskJson;
  }

  /** One page of tasks in id order; pass `nextAfter` as `after` for the next page. */
  async listTasks(options: TaskListOptions = {}): Promise<TaskListResponse> {
    return (await this.#read(
      `/v1/tasks${query({
        status: options.status,
        node: options.nodeId,
        after: options.after,
        limit: options.limit,
        consistency: options.consistency,
      })}`,
      options,
    )) as TaskListResponse;
  }

  /** Cancels a task, exactly once. @throws NotFoundError if there is no task `id`. */
  async cancelTask(id: string, options: RequestOptions = {}): Promise<TaskJson> {
    return (await this.#write(
      "POST",
      `/v1/tasks/${enc(id)}/cancel`,
      undefined,
      options,
    )) as TaskJson;
  }

  /**
   * One long-poll: the task once it has ended (`done: true`), or as it is after about `waitMs`
   * (`done: false`). `options.timeoutMs` bounds the HTTP call; keep it above `waitMs`.
   * @throws NotFoundError if there is no task `id`.
   */
  async pollTask(
    id: string,
    waitMs: number,
    options: ReadRequestOptions = {},
  ): Promise<TaskWaitResponse> {
    return (await this.#read(
      `/v1/tasks/${enc(id)}/wait${query({
        timeoutMs: Math.max(1, Math.floor(waitMs)),
        consistency: options.consistency,
      })}`,
      options,
    )) as TaskWaitResponse;
  }

  /**
   * Waits until the task has ended (succeeded, failed, timed_out, cancelled or lost) and
   * resolves with it, long-polling the node.
   * @throws TimeoutError past `timeoutMs`, CancelledError on the signal, NotFoundError if there
   *   is no task `id`.
   */
  async waitTask(id: string, options: WaitTaskOptions = {}): Promise<TaskJson> {
    const startedMs = performance.now();
    const limitMs = options.timeoutMs ?? Infinity;
    const pollMs = options.pollMs ?? DEFAULT_WAIT_MS;
    const timedOut = (): TimeoutError =>
      new TimeoutError(`task ${id} did not end within ${options.timeoutMs} ms; it goes on`);
    for (;;) {
      if (options.signal?.aborted === true) {
        throw new CancelledError(`the wait for task ${id} was cancelled; the task goes on`);
      }
      const remainingMs = limitMs - (performance.now() - startedMs);
      if (remainingMs < 1) throw timedOut();
      const waitMs = Math.min(pollMs, remainingMs);
      // When the call is cut to the wait's remaining time, its timeout is the wait's: timers
      // run on the loop's millisecond clock and may fire a fraction before performance.now()
      // says the limit passed.
      const cutToLimit = waitMs + POLL_SLACK_MS >= remainingMs;
      let answer: TaskWaitResponse;
      try {
        answer = await this.pollTask(id, waitMs, {
          timeoutMs: Math.max(1, Math.floor(Math.min(waitMs + POLL_SLACK_MS, remainingMs))),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
        });
      } catch (error) {
        // The call's deadline is the wait's: say which one ran out.
        if (
          error instanceof TimeoutError &&
          (cutToLimit || performance.now() - startedMs >= limitMs)
        ) {
          throw timedOut();
        }
        throw error;
      }
      if (answer.done) return answer.task;
      options.onProgress?.(answer.task);
    }
  }

  /** The captured output of the task's last ended attempt. @throws NotFoundError. */
  async taskLogs(id: string, options: ReadRequestOptions = {}): Promise<TaskLogsResponse> {
    return (await this.#read(
      `/v1/tasks/${enc(id)}/logs${query({ consistency: options.consistency })}`,
      options,
    )) as TaskLogsResponse;
  }

  /**
   * Task `id`'s output as it is written, from the node that runs it (whichever node this client
   * reaches forwards there), then one `end` message once the task ended; across retries on
   * other nodes (an `attempt` message each) and reconnects (nothing delivered twice). A task that
   * already ended gives its captured output and its end. Stops without an error when
   * `options.signal` aborts.
   * @throws NotFoundError if there is no task `id`; PermissionDeniedError without task read.
   */
  followTaskLogs(id: string, options: FollowOptions = {}): AsyncGenerator<TaskLogEvent> {
    return followTaskLog(this.#streams(), id, options);
  }

  // ---------------------------------------------------------------------------------------------
  // VMs

  /**
   * Creates a VM, exactly once.
   * @throws InvalidArgumentError for a bad name or spec, ConflictError if the name is taken.
   */
  async createVm(
    name: string,
    spec: VmSpecRequest,
    options: CreateVmOptions = {},
  ): Promise<VmJson> {
    const body: CreateVmBody = {
      name,
      spec,
      ...(options.desired === undefined ? {} : { desired: options.desired }),
    };
    return (await this.#write("POST", "/v1/vms", body, options)) as VmJson;
  }

  /** One VM. @throws NotFoundError if there is no VM `name`. */
  async getVm(name: string, options: ReadRequestOptions = {}): Promise<VmJson> {
    return (await this.#read(
      `/v1/vms/${enc(name)}${query({ consistency: options.consistency })}`,
      options,
    )) as VmJson;
  }

  /**
   * A piece of VM `name`'s serial console log, from the node that runs it (whichever node this
   * client reaches forwards there): the last `tail` lines, or what follows `offset` (the
   * `nextOffset` of the previous answer, to follow the log). At most 64 KiB per call.
   */
  async vmLogs(
    name: string,
    options: RequestOptions & { readonly offset?: number; readonly tail?: number } = {},
  ): Promise<VmLogResponse> {
    return (await this.#read(
      `/v1/vms/${enc(name)}/logs${query({ offset: options.offset, tail: options.tail })}`,
      options,
    )) as VmLogResponse;
  }

  /**
   * VM `name`'s serial console: the last `tail` lines (default 100), then each new piece as it is
   * written, from the node that runs it (any node forwards there); across rotations, stop/start
   * and moves to another node (a `moved` message). Ends after a `deleted` message, or without an
   * error when `options.signal` aborts.
   * @throws NotFoundError if there is no VM `name`, or it is not placed and the node reached
   *   keeps no log of it.
   */
  followVmLogs(
    name: string,
    options: FollowOptions & { readonly tail?: number } = {},
  ): AsyncGenerator<VmLogEvent> {
    return followVmLog(this.#streams(), name, options);
  }

  /**
   * Runs `command` (a shell command line) in qemu VM `name`'s guest through the Blixard guest
   * agent, on the node that runs it (any node forwards there), once: never retried after it may
   * have reached a node. The guest kills it after `timeoutMs` (default 5 s; at most what the
   * node's request deadline leaves). The call's own deadline is set to fit.
   * @throws NotFoundError, InvalidArgumentError (a process VM, a timeout too long), ConflictError
   *   (it runs nowhere), UnavailableError (booting, no agent), TimeoutError (no answer).
   */
  async execInVm(
    name: string,
    command: string,
    options: RequestOptions & { readonly commandTimeoutMs?: number } = {},
  ): Promise<VmExecResponse> {
    const once = this.#transport.once;
    if (once === undefined) {
      throw new InvalidArgumentError("this client cannot make calls that must not be retried");
    }
    const { commandTimeoutMs, ...call } = options;
    const timeoutMs =
      call.timeoutMs ?? Math.max(EXEC_CALL_FLOOR_MS, (commandTimeoutMs ?? 5000) + EXEC_SLACK_MS);
    return (await once.call(
      this.#transport,
      {
        method: "POST",
        path: `/v1/vms/${enc(name)}/exec`,
        body: {
          command,
          ...(commandTimeoutMs === undefined ? {} : { timeoutMs: commandTimeoutMs }),
        },
      },
      callOptions({ ...call, timeoutMs }),
    )) as VmExecResponse;
  }

  /** Every VM, by name. */
  async listVms(options: ReadRequestOptions = {}): Promise<VmJson[]> {
    const body = (await this.#read(
      `/v1/vms${query({ consistency: options.consistency })}`,
      options,
    )) as VmsResponse;
    return body.vms;
  }

  /** Sets a VM's desired state to running. @throws NotFoundError. */
  async startVm(name: string, options: RequestOptions = {}): Promise<VmJson> {
    return (await this.#write("POST", `/v1/vms/${enc(name)}/start`, undefined, options)) as VmJson;
  }

  /** Sets a VM's desired state to stopped. @throws NotFoundError. */
  async stopVm(name: string, options: RequestOptions = {}): Promise<VmJson> {
    return (await this.#write("POST", `/v1/vms/${enc(name)}/stop`, undefined, options)) as VmJson;
  }

  /**
   * Starts a live migration of running qemu VM `name` to node `options.to` (omitted: one the
   * scheduler picks); returns the VM `migrating`. The migration ends when `getVm` shows it
   * `running` on the target (moved) or on its node with the failure as `lastError` (rolled back).
   * @throws NotFoundError, InvalidArgumentError (a process VM, or its own node named),
   *   ConflictError (not running, already migrating, no node can take it).
   */
  async migrateVm(
    name: string,
    options: RequestOptions & { readonly to?: number } = {},
  ): Promise<VmJson> {
    const { to, ...request } = options;
    return (await this.#write(
      "POST",
      `/v1/vms/${enc(name)}/migrate`,
      to === undefined ? {} : { targetNodeId: to },
      request,
    )) as VmJson;
  }

  /** Deletes a VM, exactly once. @throws NotFoundError if there is no VM `name`. */
  async deleteVm(name: string, options: RequestOptions = {}): Promise<void> {
    await this.#write("DELETE", `/v1/vms/${enc(name)}`, undefined, options);
  }

  // ---------------------------------------------------------------------------------------------
  // Settings

  /** The cluster's orchestrator settings. */
  async getSettings(options: ReadRequestOptions = {}): Promise<OrchestratorSettingsJson> {
    return (await this.#read(
      `/v1/settings/orchestrator${query({ consistency: options.consistency })}`,
      options,
    )) as OrchestratorSettingsJson;
  }

  /** Replaces the cluster's orchestrator settings, exactly once. */
  async setSettings(
    settings: OrchestratorSettingsJson,
    options: RequestOptions = {},
  ): Promise<OrchestratorSettingsJson> {
    return (await this.#write(
      "PUT",
      "/v1/settings/orchestrator",
      settings,
      options,
    )) as OrchestratorSettingsJson;
  }

  #read(path: string, options: RequestOptions): Promise<unknown> {
    return this.#transport.read({ method: "GET", path }, callOptions(options));
  }

  #write(
    method: HttpRequest["method"],
    path: string,
    body: unknown,
    options: RequestOptions,
  ): Promise<unknown> {
    return this.#transport.write(
      { method, path, ...(body === undefined ? {} : { body }) },
      callOptions(options),
    );
  }
}

/** Only the call options (not the consistency, which travels in the query string). */
function callOptions(options: RequestOptions): RequestOptions {
  return {
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
}
