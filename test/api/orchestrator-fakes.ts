/**
 * Fakes for orchestrator API, service and CLI tests: an in-memory node that is both the
 * {@link OrchestratorNodePort} and the {@link CommandNode} under a real {@link CommandPort}, with a
 * toy model (no real scheduler: a task goes to the lowest online worker), and a minimal
 * {@link BlixardNodeService} so an {@link ApiServer} can run without a raft cluster.
 */
import { ApiServer } from "../../src/api/server.js";
import type { LiveOutputHub } from "../../src/orchestrator/drivers/live-output.js";
import type { OrchestratorNodePort } from "../../src/api/raft-orchestrator-service.js";
import { CommandPort, type CommandNode } from "../../src/node/command-port.js";
import type { OperationOptions } from "../../src/node/operation.js";
import type { ProposeOptions } from "../../src/node/raft-node.js";
import { NONE } from "../../src/raft/types.js";
import type { CommandResult } from "../../src/statemachine/command-result.js";
import { decodeOrchestratorCommand } from "../../src/statemachine/orchestrator/command-codec.js";
import { decodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import { RaftOrchestratorService } from "../../src/api/raft-orchestrator-service.js";
import type { BlixardNodeService, WriteOptions } from "../../src/api/service.js";
import {
  ConflictError,
  NotFoundError,
  NotLeaderError,
  UnavailableError,
} from "../../src/common/errors.js";
import type { Clock } from "../../src/common/clock.js";
import type {
  BatchItemOutcome,
  OrchestratorCommand,
  OrchestratorResult,
} from "../../src/statemachine/orchestrator/commands.js";
import type {
  OrchestratorQueries,
  TaskListOptions,
} from "../../src/statemachine/orchestrator/queries.js";
import type {
  OrchestratorSettings,
  Resources,
  Task,
  TaskResult,
  Vm,
  Worker,
} from "../../src/statemachine/orchestrator/types.js";

/** A task outcome the fake applies when told to (or automatically, see `autoFinish`). */
export interface FakeOutcome {
  readonly status: "succeeded" | "failed" | "timed_out" | "cancelled" | "lost";
  readonly result?: Partial<TaskResult>;
}

const EMPTY_RESULT: TaskResult = {
  exitCode: null,
  stdout: "",
  stderr: "",
  stdoutTruncated: false,
  stderrTruncated: false,
  durationMs: 0,
  error: "",
};

const TERMINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost"]);

/** A proposal the fake received. */
export interface ProposalRecord {
  readonly command: OrchestratorCommand;
  readonly options: WriteOptions;
}

/** How the fake was asked to read: through the barrier (`read`) or as it is (`stale`). */
export type FakeRead = "read" | "stale";

/** An in-memory orchestrator "node": applies commands at once, in call order. */
export class FakeOrchestratorNode implements OrchestratorNodePort, CommandNode {
  readonly nodeId: number;
  /** Follower: proposals and lease reads fail with NOT_LEADER naming `leaderId`. */
  role: "leader" | "follower" = "leader";
  leaderId: number | undefined;
  /** Every proposal received, in order (including refused ones). */
  readonly proposals: ProposalRecord[] = [];
  /** Every read, in order. */
  readonly barriers: FakeRead[] = [];
  /** When set, each submitted task is finished this way on a later event-loop turn. */
  autoFinish: ((task: Task) => FakeOutcome | undefined) | undefined;
  /** Makes the read barrier fail with this error (once set). */
  barrierError: Error | undefined;
  /** Log time of the next applied command. */
  nowMs = 1_700_000_000_000;

  readonly #workers = new Map<number, Worker>();
  readonly #tasks = new Map<string, Task>();
  readonly #vms = new Map<string, Vm>();
  #settings: OrchestratorSettings = { placement: "binpack" };
  readonly #listeners = new Set<() => void>();
  readonly #sessions = new Map<string, Promise<OrchestratorResult>>();

  /** @param nodeId this node's id. */
  constructor(nodeId = 1) {
    this.nodeId = nodeId;
    this.leaderId = nodeId;
  }

  /** How many apply listeners are subscribed. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  readonly queries: OrchestratorQueries = {
    workers: () => [...this.#workers.values()].sort((a, b) => a.nodeId - b.nodeId),
    worker: (nodeId) => this.#workers.get(nodeId),
    task: (id) => this.#tasks.get(id),
    tasks: (options: TaskListOptions = {}) =>
      [...this.#tasks.values()]
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .filter(
          (t) =>
            (options.status === undefined || t.status === options.status) &&
            (options.nodeId === undefined || t.nodeId === options.nodeId) &&
            (options.after === undefined || t.id > options.after),
        )
        .slice(0, Math.min(options.limit ?? 100, 1000)),
    vm: (name) => this.#vms.get(name),
    vms: () => [...this.#vms.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    assignments: (nodeId) => ({
      tasks: [...this.#tasks.values()].filter(
        (t) => t.nodeId === nodeId && (t.status === "assigned" || t.status === "running"),
      ),
      vms: [...this.#vms.values()].filter((v) => v.nodeId === nodeId),
    }),
    settings: () => this.#settings,
  };

  /** @inheritdoc */
  get id(): number {
    return this.nodeId;
  }

  /** @inheritdoc */
  get leader(): number {
    return this.leaderId ?? NONE;
  }

  /** @inheritdoc */
  get isLeader(): boolean {
    return this.role === "leader";
  }

  /** @inheritdoc */
  async propose(bytes: Uint8Array, propose: ProposeOptions = {}): Promise<CommandResult<unknown>> {
    const envelope = decodeCommandEnvelope(bytes);
    const command = decodeOrchestratorCommand(envelope.payload);
    const options: WriteOptions = {
      ...(envelope.session === undefined ? {} : { session: envelope.session }),
      ...(propose.leaderOnly === undefined ? {} : { leaderOnly: propose.leaderOnly }),
    };
    return { ok: true, value: await this.proposeCommand(command, options) };
  }

  /** Applies `command` as proposed with `options` (the session makes a retry return the first result). */
  proposeCommand(command: OrchestratorCommand, options: WriteOptions): Promise<OrchestratorResult> {
    this.proposals.push({ command, options });
    if (this.role === "follower") {
      return Promise.reject(
        new NotLeaderError(this.leaderId === undefined ? undefined : { id: this.leaderId }),
      );
    }
    const session = options.session;
    if (session === undefined) return this.#applyAsync(command);
    const key = `${session.clientId}/${session.sequence}`;
    const earlier = this.#sessions.get(key);
    if (earlier !== undefined) return earlier;
    const result = this.#applyAsync(command);
    this.#sessions.set(key, result);
    return result;
  }

  /** @inheritdoc */
  async read<T>(query: () => T, _options?: OperationOptions): Promise<T> {
    this.barriers.push("read");
    if (this.barrierError !== undefined) throw this.barrierError;
    return query();
  }

  /** @inheritdoc */
  readStale<T>(query: () => T): T {
    this.barriers.push("stale");
    return query();
  }

  /** @inheritdoc */
  onApplied(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Registers a worker directly (as an agent's proposal would). */
  addWorker(
    nodeId: number,
    options: { capacity?: Resources; features?: string[]; status?: Worker["status"] } = {},
  ): Worker {
    const worker: Worker = {
      nodeId,
      capacity: options.capacity ?? { cpuMillis: 4000, memoryMb: 8192, diskGb: 100 },
      features: options.features ?? [],
      status: options.status ?? "online",
      drain: options.status === "draining",
      allocated: { cpuMillis: 0, memoryMb: 0, diskGb: 0 },
      lastSeenMs: this.nowMs,
    };
    this.#workers.set(nodeId, worker);
    this.#notify();
    return worker;
  }

  /** Puts `vm` in the model as is (placed, with any status), as applies would have left it. */
  putVm(vm: Vm): void {
    this.#vms.set(vm.name, vm);
    this.#notify();
  }

  /** Ends task `id` as an agent's report would, and notifies the apply listeners. */
  finish(id: string, outcome: FakeOutcome): Task {
    const task = this.#tasks.get(id);
    if (task === undefined) throw new NotFoundError(`no task ${id}`);
    const ended: Task = {
      ...task,
      status: outcome.status,
      result: { ...EMPTY_RESULT, ...outcome.result },
      updatedAtMs: ++this.nowMs,
    };
    this.#tasks.set(id, ended);
    this.#notify();
    return ended;
  }

  /** Moves task `id` to running, and notifies the apply listeners. */
  markRunning(id: string): void {
    const task = this.#tasks.get(id);
    if (task === undefined) throw new NotFoundError(`no task ${id}`);
    this.#tasks.set(id, { ...task, status: "running", updatedAtMs: ++this.nowMs });
    this.#notify();
  }

  /** Removes task `id` (as a future garbage collection might), and notifies. */
  forget(id: string): void {
    this.#tasks.delete(id);
    this.#notify();
  }

  async #applyAsync(command: OrchestratorCommand): Promise<OrchestratorResult> {
    // Applying takes a turn of the event loop, as a real commit does.
    await new Promise((resolve) => setImmediate(resolve));
    const result = this.#apply(command);
    this.#notify();
    return result;
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #apply(command: OrchestratorCommand): OrchestratorResult {
    const now = ++this.nowMs;
    switch (command.type) {
      case "setWorkerDrain": {
        const worker = this.#workers.get(command.nodeId);
        if (worker === undefined) throw new NotFoundError(`node ${command.nodeId} is no worker`);
        // As the model: drained once nothing runs there (the toy moves nothing off).
        const busy = [...this.#tasks.values()].some(
          (t) => t.nodeId === command.nodeId && (t.status === "assigned" || t.status === "running"),
        );
        const status =
          worker.status === "offline"
            ? "offline"
            : command.draining
              ? busy
                ? "draining"
                : "drained"
              : "online";
        const updated: Worker = { ...worker, drain: command.draining, status };
        this.#workers.set(command.nodeId, updated);
        return { type: "worker", worker: updated };
      }
      case "submitTask": {
        if (this.#tasks.has(command.id)) throw new ConflictError(`task ${command.id} exists`);
        const worker = this.queries.workers().find((w) => w.status === "online");
        const task: Task = {
          id: command.id,
          spec: command.spec,
          status: worker === undefined ? "pending" : "assigned",
          nodeId: worker?.nodeId ?? null,
          attempts: worker === undefined ? 0 : 1,
          result: null,
          cancelRequested: false,
          pendingReason: worker === undefined ? "no online worker" : "",
          submittedAtMs: now,
          updatedAtMs: now,
        };
        this.#tasks.set(task.id, task);
        const outcome = this.autoFinish?.(task);
        if (outcome !== undefined) setImmediate(() => this.finish(task.id, outcome));
        return { type: "task", task };
      }
      case "submitTasks": {
        // As the model: each item as its own submit; a taken id refuses that item only.
        const items = command.tasks.map((item): BatchItemOutcome => {
          try {
            const applied = this.#apply({ type: "submitTask", ...item });
            const task = (applied as { task: Task }).task;
            return { ok: true, id: task.id, status: task.status, nodeId: task.nodeId };
          } catch (error) {
            if (!(error instanceof ConflictError)) throw error;
            return { ok: false, id: item.id, code: "CONFLICT", message: error.message };
          }
        });
        return { type: "batch", items };
      }
      case "cancelTask": {
        const task = this.#tasks.get(command.id);
        if (task === undefined) throw new NotFoundError(`no task ${command.id}`);
        if (TERMINAL.has(task.status)) throw new ConflictError(`task ${command.id} has ended`);
        // As the model does: a pending task ends at once, a placed one is flagged for its agent.
        const cancelled: Task =
          task.status === "pending"
            ? { ...task, status: "cancelled", result: EMPTY_RESULT, updatedAtMs: now }
            : { ...task, cancelRequested: true, updatedAtMs: now };
        this.#tasks.set(task.id, cancelled);
        return { type: "task", task: cancelled };
      }
      case "createVm": {
        if (this.#vms.has(command.name)) {
          throw new ConflictError(`a VM named ${command.name} already exists`);
        }
        const vm: Vm = {
          name: command.name,
          spec: command.spec,
          desired: command.desired,
          status: "pending",
          nodeId: null,
          restarts: 0,
          lastError: "",
          pendingReason: "",
          createdAtMs: now,
          updatedAtMs: now,
        };
        this.#vms.set(vm.name, vm);
        return { type: "vm", vm };
      }
      case "setVmDesired": {
        const vm = this.#vms.get(command.name);
        if (vm === undefined) throw new NotFoundError(`no VM ${command.name}`);
        const updated: Vm = { ...vm, desired: command.desired, updatedAtMs: now };
        this.#vms.set(vm.name, updated);
        return { type: "vm", vm: updated };
      }
      case "migrateVm": {
        // Only the shape of the model's answer: migrating to the named node (or node 2).
        const vm = this.#vms.get(command.name);
        if (vm === undefined) throw new NotFoundError(`no VM ${command.name}`);
        const targetNodeId = command.targetNodeId ?? 2;
        const updated: Vm = {
          ...vm,
          status: "migrating",
          migration: { targetNodeId, incomingUri: "", startedAtMs: now },
          updatedAtMs: now,
        };
        this.#vms.set(vm.name, updated);
        return { type: "vm", vm: updated };
      }
      case "deleteVm": {
        if (!this.#vms.delete(command.name)) throw new NotFoundError(`no VM ${command.name}`);
        return { type: "deleted" };
      }
      case "setSettings":
        this.#settings = command.settings;
        return { type: "settings", settings: this.#settings };
      case "taskStarted": {
        // As the model, for the attempt it placed only.
        const task = this.#tasks.get(command.id);
        if (task === undefined) throw new NotFoundError(`no task ${command.id}`);
        if (task.nodeId !== command.nodeId || task.attempts !== command.attempt) {
          throw new ConflictError(`task ${command.id} is not at attempt ${command.attempt} here`);
        }
        const running: Task = { ...task, status: "running", updatedAtMs: now };
        this.#tasks.set(task.id, running);
        return { type: "task", task: running };
      }
      case "agentReports": {
        // As the model: each report on its own; a refused one is its item's error.
        const items = command.reports.map((report): BatchItemOutcome => {
          const id = "id" in report ? report.id : report.name;
          try {
            const task = (this.#apply(report) as { task: Task }).task;
            return { ok: true, id, status: task.status, nodeId: task.nodeId };
          } catch (error) {
            if (error instanceof ConflictError || error instanceof NotFoundError) {
              return { ok: false, id, code: error.code, message: error.message };
            }
            throw error;
          }
        });
        return { type: "batch", items };
      }
      default:
        throw new UnavailableError(`the fake does not apply ${command.type}`);
    }
  }
}

/** A {@link BlixardNodeService} with just enough for an {@link ApiServer}: no kv, no cluster. */
export function fakeNodeService(nodeId: number): BlixardNodeService {
  const unsupported = (): never => {
    throw new UnavailableError("the fake node has no kv or membership");
  };
  return {
    nodeId,
    kvGet: unsupported,
    kvList: unsupported,
    kvPut: unsupported,
    kvDelete: unsupported,
    kvCompareAndSet: unsupported,
    status: () => ({
      id: nodeId,
      term: 1,
      role: "leader",
      leader: nodeId,
      commitIndex: 0,
      appliedIndex: 0,
      lastIndex: 0,
      snapshotIndex: 0,
      pendingProposals: 0,
      proposalsForwarded: 0,
      protocolVersion: 2,
      clusterProtocolVersion: 2,
      forwardedEntriesApplied: 0,
      firstForwardedIndex: 0,
      forwardedProposalsRefused: 0,
      leadTransferee: undefined,
      config: {
        voters: [nodeId],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
      progress: new Map(),
      stopped: false,
    }),
    members: () => [],
    addLearner: unsupported,
    promote: unsupported,
    removeMember: unsupported,
    replaceMember: unsupported,
    transferLeader: unsupported,
    healthy: () => true,
    readiness: () => ({ ready: true, leader: nodeId }),
  };
}

/** A clock on the real time, for services behind a listening server. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer: (delayMs, callback) => {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** One API server over a fake orchestrator node. */
export interface FakeApi {
  readonly node: FakeOrchestratorNode;
  readonly service: RaftOrchestratorService;
  readonly server: ApiServer;
  readonly url: URL;
  close(): Promise<void>;
}

/**
 * Starts an API server on 127.0.0.1 serving a {@link RaftOrchestratorService} over `node`.
 * Task ids are `task-0001`, `task-0002`, … unless `newTaskId` says otherwise.
 */
export async function startFakeApi(
  options: {
    node?: FakeOrchestratorNode;
    leaderApiAddress?: (id: number) => URL | undefined;
    requestTimeoutMs?: number;
    newTaskId?: () => string;
    /** The VM log directory of `vm logs --follow`. */
    vmLogDir?: string;
    /** The running attempts of `task logs --follow`. */
    liveOutput?: LiveOutputHub;
    /** Whether report batches are taken (the cluster's protocol gate); default always. */
    acceptsBatchCommands?: () => boolean;
  } = {},
): Promise<FakeApi> {
  const node = options.node ?? new FakeOrchestratorNode();
  let next = 0;
  const service = new RaftOrchestratorService({
    node,
    commands: new CommandPort({
      node,
      clock: realClock,
      ...(options.leaderApiAddress === undefined
        ? {}
        : { leaderAddress: options.leaderApiAddress }),
    }),
    clock: realClock,
    newTaskId: options.newTaskId ?? (() => `task-${String(++next).padStart(4, "0")}`),
    ...(options.vmLogDir === undefined ? {} : { vmLogDir: options.vmLogDir }),
    ...(options.liveOutput === undefined ? {} : { liveOutput: options.liveOutput }),
    ...(options.acceptsBatchCommands === undefined
      ? {}
      : { acceptsBatchCommands: options.acceptsBatchCommands }),
  });
  const server = new ApiServer({
    // These tests are about the API's behaviour, not its authorization (test/api/auth-*.test.ts).
    auth: { mode: "insecure-open" },
    service: fakeNodeService(node.nodeId),
    orchestrator: service,
    ...(options.requestTimeoutMs === undefined
      ? {}
      : { requestTimeoutMs: options.requestTimeoutMs }),
  });
  const url = await server.listen();
  return { node, service, server, url, close: () => server.close() };
}
