/**
 * The {@link OrchestratorService} of a real node: writes and reads go through the node's
 * {@link CommandPort} (orchestrator namespace: envelope and session, typed errors, the leader's
 * address on NOT_LEADER, metrics); the applied model and apply notifications come from a small
 * port ({@link OrchestratorNodePort}). Each command is checked by the model's own reader before it
 * is proposed (bad input never reaches the log, and is refused by the same rules `apply`
 * enforces); reads wait for the consistency asked for and then query the applied model.
 */
import { invariant } from "../common/assert.js";
import type { Clock } from "../common/clock.js";
import {
  CancelledError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  UnavailableError,
  isBlixardError,
} from "../common/errors.js";
import type { CommandPort } from "../node/command-port.js";
import type { NodeId } from "../raft/types.js";
import { ORCHESTRATOR_COMMANDS } from "../statemachine/cluster/command-namespaces.js";
import {
  type BatchItemOutcome,
  type DrainMoved,
  isTerminal,
  readOrchestratorCommand,
  type OrchestratorCommand,
  type OrchestratorQueries,
  type OrchestratorResult,
  type OrchestratorSettings,
  type Task,
  type TaskSpec,
  type Vm,
  type VmDesiredState,
  type VmSpec,
  type Worker,
} from "../statemachine/orchestrator/index.js";
import { mkdir } from "node:fs/promises";
import {
  GUEST_EXEC_SLACK_MS,
  type GuestExecRequest,
} from "../orchestrator/drivers/guest-agent-client.js";
import type { GuestExecResult } from "../orchestrator/drivers/guest-agent-protocol.js";
import type { LiveOutputHub } from "../orchestrator/drivers/live-output.js";
import { vmLogInode } from "../orchestrator/drivers/vm-log-follower.js";
import {
  readVmLog,
  type VmLogChunk,
  type VmLogRequest,
} from "../orchestrator/drivers/vm-log-reader.js";
import type { LogSource } from "./events/log-stream.js";
import { taskLogSource } from "./events/task-log-follow.js";
import { vmLogSource } from "./events/vm-log-follow.js";
import { ServedByOtherNodeError } from "./forward.js";
import type { MemberDirectory } from "./member-directory.js";
import type {
  DrainOptions,
  OrchestratorService,
  ReportAnswer,
  TaskFilters,
  TaskLogs,
  TaskPage,
  VmExecAnswer,
  VmLogAnswer,
  WaitTaskOptions,
} from "./orchestrator-service.js";
import {
  DEFAULT_TASK_PAGE,
  DEFAULT_VM_EXEC_TIMEOUT_MS,
  MAX_TASK_PAGE,
  MAX_WAIT_MS,
} from "./schema/orchestrator.js";
import type { CallOptions, ReadOptions, WriteOptions } from "./service.js";

/**
 * The commands agents and the leader's monitors (liveness, drain deadlines) send through
 * {@link RaftOrchestratorService.report}.
 */
const AGENT_REPORTS: ReadonlySet<OrchestratorCommand["type"]> = new Set([
  "registerWorker",
  "taskStarted",
  "taskFinished",
  "vmObserved",
  "markWorkerOffline",
  "drainDeadlineReached",
  "agentReports",
]);

/** The most task waits one node holds at once; more get OVERLOADED. */
export const MAX_TASK_WAITERS = 4096;

/**
 * What the service needs of a node running the orchestrator state machine besides its command
 * port: the applied model and apply notifications.
 */
export interface OrchestratorNodePort {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** The applied model (this node's replica). */
  readonly queries: OrchestratorQueries;
  /**
   * Calls `listener` each time this node has applied one or more entries to the orchestrator
   * model from now on (never from within this call); returns the function that unsubscribes.
   * The listener must not throw.
   */
  onApplied(listener: () => void): () => void;
}

/** Options of a {@link RaftOrchestratorService}. */
export interface RaftOrchestratorServiceOptions {
  /** The node. */
  readonly node: OrchestratorNodePort;
  /** The node's command port. */
  readonly commands: CommandPort;
  /** Times task waits. The real clock on a node; a manual one in tests. */
  readonly clock: Clock;
  /** Member addresses, for the node that serves a VM's or task's logs. */
  readonly directory?: MemberDirectory;
  /**
   * Makes the id of a submitted task. Default `crypto.randomUUID()`. The id is chosen here,
   * before proposing, so it is part of the command: a retry under the same session gets the
   * first attempt's task back rather than a second task.
   */
  readonly newTaskId?: () => string;
  /** Reads this node's VM console logs; omitted: `vmLog` answers UNAVAILABLE. */
  readonly readVmLog?: (name: string, request: VmLogRequest) => Promise<VmLogChunk>;
  /** This node's VM log directory, for `followVmLog`; omitted: it answers UNAVAILABLE. */
  readonly vmLogDir?: string;
  /** The task attempts running on this node, for `followTaskLog`. */
  readonly liveOutput?: LiveOutputHub;
  /** Runs a command in a VM's guest on this node (the qemu driver's); omitted: UNAVAILABLE. */
  readonly execInVm?: (name: string, request: GuestExecRequest) => Promise<GuestExecResult>;
  /**
   * Whether every member can apply the batch commands (`agentReports`, `submitTasks`): the
   * cluster's protocol version rose to one only releases that know them speak (see
   * `node/protocol-gate.ts`). Before that, `report` refuses batches and `submitTasks` refuses
   * outright, with INVALID_ARGUMENT (what a server of the release before answers for a command it
   * does not know), so a rolling upgrade never puts an entry before a member that cannot apply
   * it. Default: always.
   */
  readonly acceptsBatchCommands?: () => boolean;
}

/** {@link OrchestratorService} over an {@link OrchestratorNodePort}. */
export class RaftOrchestratorService implements OrchestratorService {
  readonly #node: OrchestratorNodePort;
  readonly #commands: CommandPort;
  readonly #clock: Clock;
  readonly #newTaskId: () => string;
  readonly #directory: MemberDirectory | undefined;
  readonly #readVmLog: RaftOrchestratorServiceOptions["readVmLog"];
  readonly #vmLogDir: string | undefined;
  readonly #liveOutput: LiveOutputHub | undefined;
  readonly #execInVm: RaftOrchestratorServiceOptions["execInVm"];
  readonly #acceptsBatchCommands: () => boolean;
  #waiters = 0;

  /** Wraps a node port. Throws nothing. */
  constructor(options: RaftOrchestratorServiceOptions) {
    this.#node = options.node;
    this.#commands = options.commands;
    this.#clock = options.clock;
    this.#newTaskId = options.newTaskId ?? (() => crypto.randomUUID());
    this.#directory = options.directory;
    this.#readVmLog = options.readVmLog;
    this.#execInVm = options.execInVm;
    this.#vmLogDir = options.vmLogDir;
    this.#liveOutput = options.liveOutput;
    this.#acceptsBatchCommands = options.acceptsBatchCommands ?? (() => true);
  }

  /** Task waits in progress on this node. */
  get waiters(): number {
    return this.#waiters;
  }

  // ---------------------------------------------------------------------------------------------
  // Workers

  /** @inheritdoc */
  async report(command: unknown, options: WriteOptions = {}): Promise<ReportAnswer> {
    const checked = readOrchestratorCommand(command);
    if (!AGENT_REPORTS.has(checked.type)) {
      throw new InvalidArgumentError(
        `a ${checked.type} command is not a report; use its own endpoint`,
      );
    }
    if (checked.type === "agentReports" && !this.#acceptsBatchCommands()) {
      // The code a server of the release before answers for a command it does not know, so an
      // agent falls back to single reports either way.
      throw new InvalidArgumentError(
        "not every member of the cluster can apply a batch of reports yet (a rolling upgrade " +
          "is under way): send each report on its own",
      );
    }
    const result = await this.#propose(checked, options);
    return result.type === "batch" ? { items: result.items } : {};
  }

  /** @inheritdoc */
  listWorkers(options: ReadOptions = {}): Promise<readonly Worker[]> {
    return this.#read(options, () => this.#node.queries.workers());
  }

  /** @inheritdoc */
  async getWorker(nodeId: NodeId, options: ReadOptions = {}): Promise<Worker> {
    const worker = await this.#read(options, () => this.#node.queries.worker(nodeId));
    if (worker === undefined) throw workerNotFound(nodeId);
    return worker;
  }

  /** @inheritdoc */
  async drainWorker(
    nodeId: NodeId,
    draining: boolean,
    options: DrainOptions = {},
  ): Promise<{ readonly worker: Worker; readonly moved: DrainMoved }> {
    const { deadlineMs } = options;
    const result = await this.#propose(
      {
        type: "setWorkerDrain",
        nodeId,
        draining,
        ...(deadlineMs === undefined ? {} : { deadlineMs }),
      },
      options,
    );
    invariant(result.type === "worker", () => `setWorkerDrain returned a ${result.type} result`);
    return { worker: result.worker, moved: result.moved ?? { tasks: 0, vms: 0 } };
  }

  // ---------------------------------------------------------------------------------------------
  // Tasks

  /** @inheritdoc */
  async submitTask(spec: TaskSpec, options: WriteOptions = {}): Promise<Task> {
    const id = this.#newTaskId();
    const result = await this.#propose({ type: "submitTask", id, spec }, options);
    invariant(result.type === "task", () => `submitTask returned a ${result.type} result`);
    return result.task;
  }

  /** @inheritdoc */
  async submitTasks(
    specs: readonly TaskSpec[],
    options: WriteOptions = {},
  ): Promise<readonly BatchItemOutcome[]> {
    if (!this.#acceptsBatchCommands()) {
      throw new InvalidArgumentError(
        "not every member of the cluster can apply a batch submit yet (a rolling upgrade is " +
          "under way): submit the tasks one by one (POST /v1/tasks), or once every member runs " +
          "this release",
      );
    }
    const tasks = specs.map((spec) => ({ id: this.#newTaskId(), spec }));
    const result = await this.#propose({ type: "submitTasks", tasks }, options);
    invariant(result.type === "batch", () => `submitTasks returned a ${result.type} result`);
    return result.items;
  }

  /** @inheritdoc */
  async getTask(id: string, options: ReadOptions = {}): Promise<Task> {
    const task = await this.#read(options, () => this.#node.queries.task(id));
    if (task === undefined) throw taskNotFound(id);
    return task;
  }

  /** @inheritdoc */
  async listTasks(filters: TaskFilters, options: ReadOptions = {}): Promise<TaskPage> {
    const limit = filters.limit ?? DEFAULT_TASK_PAGE;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_TASK_PAGE) {
      throw new InvalidArgumentError(`limit must be in 1..${MAX_TASK_PAGE}, got ${limit}`);
    }
    return this.#read(options, () => {
      const queries = this.#node.queries;
      const tasks = queries.tasks({ ...filters, limit });
      const last = tasks[tasks.length - 1];
      // Asking for one more after the page, rather than limit + 1, keeps the query within its
      // own limit and tells "exactly limit" apart from "more".
      const more =
        tasks.length === limit &&
        last !== undefined &&
        queries.tasks({ ...filters, after: last.id, limit: 1 }).length > 0;
      return { tasks, more };
    });
  }

  /** @inheritdoc */
  async cancelTask(id: string, options: WriteOptions = {}): Promise<Task> {
    const result = await this.#propose({ type: "cancelTask", id }, options);
    invariant(result.type === "task", () => `cancelTask returned a ${result.type} result`);
    return result.task;
  }

  /** @inheritdoc */
  async waitTask(id: string, options: WaitTaskOptions): Promise<Task> {
    const { timeoutMs, signal } = options;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_WAIT_MS) {
      throw new InvalidArgumentError(`timeoutMs must be in 0..${MAX_WAIT_MS}, got ${timeoutMs}`);
    }
    if (this.#waiters >= MAX_TASK_WAITERS) {
      throw new OverloadedError(
        `${MAX_TASK_WAITERS} task waits are in progress on node ${this.#node.nodeId}; retry later`,
      );
    }
    this.#waiters++;
    try {
      const startedMs = this.#clock.now();
      const first = await this.#read(
        {
          ...(signal === undefined ? {} : { signal }),
          ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
          timeoutMs: Math.max(1, timeoutMs),
        },
        () => this.#node.queries.task(id),
      );
      if (first === undefined) throw taskNotFound(id);
      if (isTerminal(first.status)) return first;
      const remainingMs = timeoutMs - (this.#clock.now() - startedMs);
      return await this.#untilTerminal(first, remainingMs, signal);
    } finally {
      this.#waiters--;
    }
  }

  /**
   * Resolves when `task` is terminal (looked at after every apply) or with its latest state
   * after `remainingMs`; rejects on `signal`, or if the task disappears.
   */
  #untilTerminal(task: Task, remainingMs: number, signal: AbortSignal | undefined): Promise<Task> {
    const id = task.id;
    return new Promise<Task>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new CancelledError(`the wait for task ${id} was cancelled`));
        return;
      }
      let latest = task;
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
        unsubscribe();
        outcome();
      };
      const onAbort = (): void =>
        settle(() => reject(new CancelledError(`the wait for task ${id} was cancelled`)));
      const check = (): void => {
        const now = this.#node.queries.task(id);
        if (now === undefined) {
          settle(() => reject(taskNotFound(id)));
          return;
        }
        latest = now;
        if (isTerminal(now.status)) settle(() => resolve(now));
      };
      const timer = this.#clock.setTimer(Math.max(0, remainingMs), () =>
        settle(() => resolve(latest)),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      const unsubscribe = this.#node.onApplied(check);
      // The model may have moved between the first look and the subscription.
      check();
    });
  }

  /** @inheritdoc */
  async taskLogs(id: string, options: ReadOptions = {}): Promise<TaskLogs> {
    const task = await this.getTask(id, options);
    const result = task.result;
    return {
      id: task.id,
      status: task.status,
      available: result !== null,
      stdout: result?.stdout ?? "",
      stderr: result?.stderr ?? "",
      stdoutTruncated: result?.stdoutTruncated ?? false,
      stderrTruncated: result?.stderrTruncated ?? false,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // VMs

  /** @inheritdoc */
  async createVm(
    name: string,
    spec: VmSpec,
    desired: VmDesiredState,
    options: WriteOptions = {},
  ): Promise<Vm> {
    const result = await this.#propose({ type: "createVm", name, spec, desired }, options);
    invariant(result.type === "vm", () => `createVm returned a ${result.type} result`);
    return result.vm;
  }

  /** @inheritdoc */
  async getVm(name: string, options: ReadOptions = {}): Promise<Vm> {
    const vm = await this.#read(options, () => this.#node.queries.vm(name));
    if (vm === undefined) throw vmNotFound(name);
    return vm;
  }

  /** @inheritdoc */
  async vmLog(
    name: string,
    request: VmLogRequest,
    options: CallOptions = {},
  ): Promise<VmLogAnswer> {
    const vm = await this.#read({ ...options, consistency: "stale" }, () =>
      this.#node.queries.vm(name),
    );
    if (vm === undefined) throw vmNotFound(name);
    const here = this.#node.nodeId;
    // A VM that is not placed (stopped) left its log on the node that ran it: try this one.
    if (vm.nodeId !== null && vm.nodeId !== here) throw this.#servedBy(vm.nodeId, `VM ${name}`);
    if (this.#readVmLog === undefined) {
      throw new UnavailableError("this node does not keep VM console logs");
    }
    return { ...(await this.#readVmLog(name, request)), nodeId: here };
  }

  /** @inheritdoc */
  async followVmLog(
    name: string,
    request: { readonly tailLines?: number },
    options: CallOptions = {},
  ): Promise<LogSource> {
    const vm = await this.#read({ ...options, consistency: "stale" }, () =>
      this.#node.queries.vm(name),
    );
    if (vm === undefined) throw vmNotFound(name);
    const here = this.#node.nodeId;
    if (vm.nodeId !== null && vm.nodeId !== here) throw this.#servedBy(vm.nodeId, `VM ${name}`);
    const logDir = this.#vmLogDir;
    if (logDir === undefined) throw new UnavailableError("this node does not keep VM console logs");
    await mkdir(logDir, { recursive: true, mode: 0o700 });
    let start = { text: "", offset: 0, inode: undefined as number | undefined };
    try {
      const tail = await readVmLog(logDir, name, {
        ...(request.tailLines === undefined ? {} : { tailLines: request.tailLines }),
      });
      start = { text: tail.text, offset: tail.nextOffset, inode: await vmLogInode(logDir, name) };
    } catch (error) {
      // A VM placed here may not have written its log yet; one that is not placed has none here.
      if (!isBlixardError(error) || error.code !== "NOT_FOUND" || vm.nodeId !== here) throw error;
    }
    return vmLogSource({
      name,
      nodeId: here,
      queries: this.#node.queries,
      onApplied: (listener) => this.#node.onApplied(listener),
      logDir,
      start,
    });
  }

  /** @inheritdoc */
  async execInVm(
    name: string,
    request: { readonly command: string; readonly timeoutMs?: number },
    options: CallOptions = {},
  ): Promise<VmExecAnswer> {
    const vm = await this.#read({ ...options, consistency: "stale" }, () =>
      this.#node.queries.vm(name),
    );
    if (vm === undefined) throw vmNotFound(name);
    if (vm.spec.driver !== "qemu") {
      throw new InvalidArgumentError(
        `VM ${name} uses the ${vm.spec.driver} driver; vm exec runs commands through the guest agent of a qemu VM`,
      );
    }
    if (vm.nodeId === null) {
      throw new ConflictError(`VM ${name} runs on no node (status ${vm.status}); start it first`);
    }
    const here = this.#node.nodeId;
    if (vm.nodeId !== here) throw this.#servedBy(vm.nodeId, `VM ${name}`);
    if (this.#execInVm === undefined) {
      throw new UnavailableError("this node cannot run commands in VMs");
    }
    // The answer must be back before the request's deadline: the guest's timeout (whole
    // seconds), the time its answer may take, and a margin for the reply.
    const deadlineMs = options.timeoutMs ?? Infinity;
    const maxTimeoutMs = Math.floor((deadlineMs - GUEST_EXEC_SLACK_MS - 500) / 1000) * 1000;
    const timeoutMs = request.timeoutMs ?? Math.min(DEFAULT_VM_EXEC_TIMEOUT_MS, maxTimeoutMs);
    if (timeoutMs < 1 || Math.ceil(timeoutMs / 1000) * 1000 > maxTimeoutMs) {
      throw new InvalidArgumentError(
        `a timeout of ${timeoutMs} ms does not fit in this request's deadline (${Math.floor(deadlineMs)} ms; at most ${Math.max(0, maxTimeoutMs)} ms leaves room for the answer); ask for less, or run longer work in the background in the guest`,
      );
    }
    const result = await this.#execInVm(name, {
      command: request.command,
      timeoutMs,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { nodeId: here, ...result };
  }

  /** @inheritdoc */
  async followTaskLog(id: string, options: ReadOptions = {}): Promise<LogSource> {
    const task = await this.getTask(id, options);
    const here = this.#node.nodeId;
    if (!isTerminal(task.status) && task.nodeId !== null && task.nodeId !== here) {
      throw this.#servedBy(task.nodeId, `task ${id}`);
    }
    return taskLogSource({
      taskId: id,
      nodeId: here,
      queries: this.#node.queries,
      onApplied: (listener) => this.#node.onApplied(listener),
      hub: this.#liveOutput,
    });
  }

  /** The error that has the server forward to node `nodeId`, which serves `what`. */
  #servedBy(nodeId: NodeId, what: string): Error {
    const address = this.#directory?.get(nodeId)?.apiAddress;
    if (address === undefined || !URL.canParse(address)) {
      return new UnavailableError(
        `${what} runs on node ${nodeId}, whose API address this node does not know; ask that node`,
      );
    }
    return new ServedByOtherNodeError(nodeId, address);
  }

  /** @inheritdoc */
  listVms(options: ReadOptions = {}): Promise<readonly Vm[]> {
    return this.#read(options, () => this.#node.queries.vms());
  }

  /** @inheritdoc */
  startVm(name: string, options: WriteOptions = {}): Promise<Vm> {
    return this.#setDesired(name, "running", options);
  }

  /** @inheritdoc */
  stopVm(name: string, options: WriteOptions = {}): Promise<Vm> {
    return this.#setDesired(name, "stopped", options);
  }

  async #setDesired(name: string, desired: VmDesiredState, options: WriteOptions): Promise<Vm> {
    const result = await this.#propose({ type: "setVmDesired", name, desired }, options);
    invariant(result.type === "vm", () => `setVmDesired returned a ${result.type} result`);
    return result.vm;
  }

  /** @inheritdoc */
  async migrateVm(
    name: string,
    targetNodeId: number | undefined,
    options: WriteOptions = {},
  ): Promise<Vm> {
    if (!this.#acceptsBatchCommands()) {
      // Migration came in the same release as the batch commands (protocol 2): a member of the
      // release before could not apply the command, nor read a `migrating` VM.
      throw new InvalidArgumentError(
        "not every member of the cluster can apply a migration yet (a rolling upgrade is under " +
          "way): migrate once every member runs this release",
      );
    }
    const result = await this.#propose(
      { type: "migrateVm", name, ...(targetNodeId === undefined ? {} : { targetNodeId }) },
      options,
    );
    invariant(result.type === "vm", () => `migrateVm returned a ${result.type} result`);
    return result.vm;
  }

  /** @inheritdoc */
  async deleteVm(name: string, options: WriteOptions = {}): Promise<void> {
    const result = await this.#propose({ type: "deleteVm", name }, options);
    invariant(result.type === "deleted", () => `deleteVm returned a ${result.type} result`);
  }

  // ---------------------------------------------------------------------------------------------
  // Settings

  /** @inheritdoc */
  getSettings(options: ReadOptions = {}): Promise<OrchestratorSettings> {
    return this.#read(options, () => this.#node.queries.settings());
  }

  /** @inheritdoc */
  async setSettings(
    settings: OrchestratorSettings,
    options: WriteOptions = {},
  ): Promise<OrchestratorSettings> {
    const result = await this.#propose({ type: "setSettings", settings }, options);
    invariant(result.type === "settings", () => `setSettings returned a ${result.type} result`);
    return result.settings;
  }

  // ---------------------------------------------------------------------------------------------
  // Proposals and reads

  /**
   * Checks `command` with the model's reader (INVALID_ARGUMENT or TOO_LARGE naming the field),
   * then proposes the canonical copy the reader returns.
   */
  #propose(command: OrchestratorCommand, options: WriteOptions): Promise<OrchestratorResult> {
    return this.#commands.propose(ORCHESTRATOR_COMMANDS, readOrchestratorCommand(command), options);
  }

  #read<T>(options: ReadOptions, query: () => T): Promise<T> {
    return this.#commands.read(ORCHESTRATOR_COMMANDS.name, query, options);
  }
}

function workerNotFound(nodeId: NodeId): NotFoundError {
  return new NotFoundError(
    `node ${nodeId} is not a registered worker; \`blixard worker list\` shows the workers`,
  );
}

function taskNotFound(id: string): NotFoundError {
  return new NotFoundError(`task ${id} does not exist; \`blixard task list\` shows the tasks`);
}

function vmNotFound(name: string): NotFoundError {
  return new NotFoundError(`VM ${name} does not exist; \`blixard vm list\` shows the VMs`);
}
