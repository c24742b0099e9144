/**
 * Fakes for the agent's tests: a proposer that applies commands to a real
 * {@link ClusterStateMachine} (optionally late, lost, lost after applying, or twice), a task runner
 * whose attempts the test starts and ends, and a VM driver whose handles the test drives. All
 * timing goes through a {@link ManualClock}.
 */
import { UnavailableError } from "../../../src/common/errors.js";
import { Agent } from "../../../src/orchestrator/agent/agent.js";
import { diskVerdict } from "../../../src/orchestrator/agent/disk-verdict.js";
import type { Logger } from "../../../src/common/logger.js";
import type {
  AgentQueries,
  Proposer,
  TaskRunnerPort,
} from "../../../src/orchestrator/agent/ports.js";
import type { TaskRun } from "../../../src/orchestrator/drivers/task-runner.js";
import type {
  MigrationStats,
  MigrationTarget,
  VmDriverPort,
  VmHandle,
  VmObservation,
  VmStartRequest,
  VmStopResult,
} from "../../../src/orchestrator/drivers/vm-driver.js";
import { commandErrorToException } from "../../../src/statemachine/command-result.js";
import {
  ClusterStateMachine,
  encodeOrchestratorCommand,
} from "../../../src/statemachine/cluster/index.js";
import type {
  OrchestratorCommand,
  OrchestratorResult,
  Resources,
  TaskSpec,
  VmDriver,
} from "../../../src/statemachine/orchestrator/index.js";
import { encodeCommandEnvelope } from "../../../src/statemachine/session/envelope.js";
import { ManualClock } from "../../node/fakes.js";

/** A logger that keeps nothing. */
export const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined };

/** The node the agent under test runs on. */
export const AGENT_NODE = 1;

/** The capacity the agent under test offers. */
export const AGENT_CAPACITY: Resources = { cpuMillis: 4000, memoryMb: 4096, diskGb: 10 };

/**
 * How the fake proposer treats a command:
 * - `apply`: applies it and resolves with its result;
 * - `lose`: rejects with UNAVAILABLE without applying it (the leader never got it);
 * - `lose-answer`: applies it, then rejects with UNAVAILABLE (the answer was lost);
 * - `duplicate`: applies it twice (a retry that crossed the first attempt) and resolves with the
 *   first result;
 * - `hold`: keeps it until {@link FakeCluster.releaseHeld}.
 * - `late`: rejects with UNAVAILABLE at once, as a request that timed out, but applies it at
 *   {@link FakeCluster.releaseHeld}: it was still on its way (a forwarded proposal, a batch whose
 *   answer never came back), and lands after what the agent sent next.
 */
export type ProposalFate = "apply" | "lose" | "lose-answer" | "duplicate" | "hold" | "late";

/** One proposal the fake proposer saw, with its fate. */
export interface SeenProposal {
  readonly command: OrchestratorCommand;
  readonly fate: ProposalFate;
}

/**
 * The replicated model of a one-node "cluster": a real {@link ClusterStateMachine} applying
 * commands in order at the clock's time, and the proposer the agent reports through.
 */
export class FakeCluster {
  readonly clock = new ManualClock();
  readonly machine = new ClusterStateMachine();
  readonly proposals: SeenProposal[] = [];
  /** Decides each proposal's fate; default: apply. */
  fate: (command: OrchestratorCommand) => ProposalFate = () => "apply";
  /** Delay before a proposal is handled, in ms (0: on the next timer turn). */
  delayMs = 0;
  /** Called after every applied command (the node would tell its agent). */
  onApplied: () => void = () => undefined;
  #index = 0;
  readonly #held: (() => void)[] = [];

  /** The proposer the agent uses. */
  readonly proposer: Proposer = {
    propose: (command) => this.#propose(command),
  };

  /** Applies `command` as if another node or a user proposed it; throws on an error result. */
  apply(command: OrchestratorCommand): OrchestratorResult {
    const result = this.#applyNow(command);
    if (!result.ok) throw commandErrorToException(result.error);
    return result.value;
  }

  /** Applies `command`, returning the model's result or its error as a value. */
  #applyNow(command: OrchestratorCommand) {
    const data = encodeCommandEnvelope({
      proposedAtMs: this.clock.now(),
      payload: encodeOrchestratorCommand(command),
    });
    const result = this.machine.apply({ index: ++this.#index, term: 1, data });
    this.onApplied();
    return result.ok
      ? { ok: true as const, value: result.value as OrchestratorResult }
      : { ok: false as const, error: result.error };
  }

  /** Proposals of one command type about one task, VM or worker. */
  proposalsOf(type: OrchestratorCommand["type"], about?: string | number): SeenProposal[] {
    return this.proposals.filter((p) => {
      if (p.command.type !== type) return false;
      if (about === undefined) return true;
      const c = p.command as { id?: string; name?: string; nodeId?: number };
      return (
        c.id === about || c.name === about || (type === "registerWorker" && c.nodeId === about)
      );
    });
  }

  /** Handles every held proposal now (as `apply`). */
  releaseHeld(): void {
    for (const release of this.#held.splice(0)) release();
  }

  #propose(command: OrchestratorCommand): Promise<OrchestratorResult> {
    const fate = this.fate(command);
    this.proposals.push({ command, fate });
    return new Promise<OrchestratorResult>((resolve, reject) => {
      const handle = (how: ProposalFate): void => {
        if (how === "lose") {
          reject(new UnavailableError("the proposal was lost on its way to the leader"));
          return;
        }
        const result = this.#applyNow(command);
        if (how === "duplicate") this.#applyNow(command);
        if (how === "lose-answer") {
          reject(new UnavailableError("the answer was lost; the outcome is unknown"));
        } else if (result.ok) resolve(result.value);
        else reject(commandErrorToException(result.error));
      };
      if (fate === "hold") this.#held.push(() => handle("apply"));
      else if (fate === "late") {
        this.#held.push(() => this.#applyNow(command));
        this.clock.setTimer(this.delayMs, () => handle("lose"));
      } else this.clock.setTimer(this.delayMs, () => handle(fate));
    });
  }
}

/** One attempt the fake task runner was asked to run; the test starts and ends it. */
export class FakeRun {
  readonly spec: TaskSpec;
  readonly signal: AbortSignal;
  readonly promise: Promise<TaskRun>;
  started = false;
  ended: TaskRun | undefined;
  #resolve: (run: TaskRun) => void = () => undefined;
  readonly #onStarted: () => void;

  constructor(spec: TaskSpec, options: { signal: AbortSignal; onStarted: () => void }) {
    this.spec = spec;
    this.signal = options.signal;
    this.#onStarted = options.onStarted;
    this.promise = new Promise((resolve) => (this.#resolve = resolve));
    // Honour the signal as the real runner does: the attempt is killed and ends cancelled.
    this.signal.addEventListener("abort", () =>
      this.end("cancelled", { exitCode: null, error: "cancelled: killed with SIGTERM" }),
    );
  }

  /** The process is running: the agent is told (and reports the task running). */
  start(): void {
    this.started = true;
    this.#onStarted();
  }

  /** The attempt ends with `outcome` (no-op once ended). */
  end(outcome: TaskRun["outcome"], result: Partial<TaskRun["result"]> = {}): void {
    if (this.ended !== undefined) return;
    this.ended = {
      outcome,
      result: {
        exitCode: outcome === "succeeded" ? 0 : 1,
        stdout: "",
        stderr: "",
        stdoutTruncated: false,
        stderrTruncated: false,
        durationMs: 5,
        error: "",
        ...result,
      },
    };
    this.#resolve(this.ended);
  }
}

/** A task runner whose attempts the test controls. */
export class FakeTaskRunner {
  readonly runs: FakeRun[] = [];
  readonly port: TaskRunnerPort = (spec, options) => {
    const run = new FakeRun(spec, options);
    this.runs.push(run);
    return run.promise;
  };

  /** The attempts started for the task whose spec has `args[0] === tag`. */
  runsOf(tag: string): FakeRun[] {
    return this.runs.filter((r) => r.spec.args[0] === tag);
  }
}

/** A VM handle the test drives. */
export class FakeVmHandle implements VmHandle {
  readonly name: string;
  readonly request: VmStartRequest;
  readonly settled: Promise<VmObservation>;
  stopCalls = 0;
  /** While set, a stop waits for {@link releaseStop} (a guest that takes its time). */
  holdStop = false;
  /** While set, a stop rejects with it (the driver could not signal the process). */
  failStop: Error | undefined;
  #observation: VmObservation;
  #releaseStop: () => void = () => undefined;
  #settle: (o: VmObservation) => void = () => undefined;
  #stopResult: Promise<VmStopResult> | undefined;

  constructor(request: VmStartRequest) {
    this.name = request.name;
    this.request = request;
    this.#observation = {
      name: request.name,
      status: "starting",
      restarts: request.previousRestarts ?? 0,
      lastError: "",
      pid: null,
      restartInMs: null,
    };
    this.settled = new Promise((resolve) => (this.#settle = resolve));
  }

  observe(): VmObservation {
    return this.#observation;
  }

  /** The driver sees a change and tells the agent. */
  emit(change: Partial<Omit<VmObservation, "name">>): void {
    this.#observation = { ...this.#observation, ...change };
    this.request.onChange(this.#observation);
  }

  /** It gave up restarting (or exited cleanly): final for the handle. */
  end(status: "failed" | "stopped", lastError = ""): void {
    this.emit({ status, lastError, pid: null, restartInMs: null });
    this.#settle(this.#observation);
  }

  /** Lets a held stop finish. */
  releaseStop(): void {
    this.#releaseStop();
  }

  /** The migrations asked of this handle, for the test to end. */
  readonly migrations: {
    readonly uri: string;
    readonly diskUri: string | undefined;
    readonly nodeId: number;
    readonly complete: () => void;
    readonly fail: (error: Error) => void;
  }[] = [];
  resumeCalls = 0;

  migrate({ uri, diskUri, nodeId }: MigrationTarget): Promise<MigrationStats> {
    return new Promise((resolve, reject) => {
      this.migrations.push({
        uri,
        diskUri,
        nodeId,
        complete: () => resolve({ downtimeMs: 1, totalMs: 2, transferredBytes: 3 }),
        fail: reject,
      });
    });
  }

  resume(): Promise<void> {
    this.resumeCalls++;
    return Promise.resolve();
  }

  stop(): Promise<VmStopResult> {
    this.stopCalls++;
    this.#stopResult ??= (async () => {
      if (this.holdStop) await new Promise<void>((resolve) => (this.#releaseStop = resolve));
      if (this.failStop !== undefined) throw this.failStop;
      const final = this.#observation.status;
      if (final !== "stopped" && final !== "failed") this.end("stopped");
      return { observation: await this.settled, method: "SIGTERM" as const };
    })();
    return this.#stopResult;
  }
}

/** A VM driver whose handles the test drives. */
export class FakeVmDriver implements VmDriverPort {
  readonly handles: FakeVmHandle[] = [];
  constructor(readonly kind: VmDriver = "process") {}

  start(request: VmStartRequest): VmHandle {
    const handle = new FakeVmHandle(request);
    this.handles.push(handle);
    return handle;
  }

  /** Incoming handles, in order (they are in {@link handles} too). */
  readonly incoming: FakeVmHandle[] = [];

  startIncoming(request: VmStartRequest): VmHandle {
    const handle = new FakeVmHandle(request);
    this.handles.push(handle);
    this.incoming.push(handle);
    return handle;
  }

  /** The handles started for VM `name`, oldest first. */
  handlesOf(name: string): FakeVmHandle[] {
    return this.handles.filter((h) => h.name === name);
  }

  /** VMs with something stored here (a disk): every VM started, until discarded. */
  readonly stored = new Set<string>();
  readonly discarded: string[] = [];

  storedNames(): Promise<string[]> {
    for (const handle of this.handles)
      if (!this.discarded.includes(handle.name)) this.stored.add(handle.name);
    return Promise.resolve([...this.stored]);
  }

  discard(name: string): Promise<void> {
    this.stored.delete(name);
    this.discarded.push(name);
    return Promise.resolve();
  }
}

/** A server answering an agent-only worker's disk lookups from the model (as `AgentHub` does). */
export interface FakeDiskServer {
  /** The names of each lookup, in order. */
  readonly asked: (readonly string[])[];
  /** False: every lookup fails, as when no server answers. */
  up: boolean;
}

/**
 * The model as an agent-only worker sees it: only the VMs placed on {@link AGENT_NODE}; with
 * `disks`, its disk lookups are answered from the whole model.
 */
function placedOnly(cluster: FakeCluster, disks?: FakeDiskServer): AgentQueries {
  const model = cluster.machine.orchestrator;
  return {
    ...(disks === undefined
      ? {}
      : {
          diskVerdicts: async (names: readonly string[]) => {
            disks.asked.push([...names]);
            if (!disks.up) throw new UnavailableError("no server reachable");
            return new Map(names.map((name) => [name, diskVerdict(model.vm(name), AGENT_NODE)]));
          },
        }),
    partialVmView: true,
    worker: (nodeId) => model.worker(nodeId),
    assignments: (nodeId) => model.assignments(nodeId),
    vm: (name) => {
      const vm = model.vm(name);
      return vm?.nodeId === AGENT_NODE ? vm : undefined;
    },
  };
}

/** An agent on {@link AGENT_NODE} over `cluster`, with its fakes; told of every apply. */
export function startAgent(
  cluster: FakeCluster,
  options: {
    readonly features?: readonly string[];
    readonly capacity?: Resources;
    readonly log?: Logger;
    /** Runs tasks instead of the fake runner the test drives by hand. */
    readonly runTask?: TaskRunnerPort;
    /** The kind of VM the fake driver runs (default `process`). */
    readonly vmKind?: VmDriver;
    /** Sees only the VMs placed on its node, as an agent-only worker's view (`partialVmView`). */
    readonly partialVmView?: boolean;
    /** With `partialVmView`: the server its disk lookups reach (absent: it has none). */
    readonly diskServer?: FakeDiskServer;
  } = {},
): { agent: Agent; runner: FakeTaskRunner; vms: FakeVmDriver } {
  const runner = new FakeTaskRunner();
  const vmKind = options.vmKind ?? "process";
  const vms = new FakeVmDriver(vmKind);
  const agent = new Agent({
    nodeId: AGENT_NODE,
    clock: cluster.clock,
    queries:
      options.partialVmView === true
        ? placedOnly(cluster, options.diskServer)
        : cluster.machine.orchestrator,
    proposer: cluster.proposer,
    runTask: options.runTask ?? runner.port,
    vmDrivers: new Map([[vmKind, vms]]),
    capacity: options.capacity ?? AGENT_CAPACITY,
    features: options.features ?? ["raw_exec"],
    log: options.log ?? SILENT,
  });
  cluster.onApplied = () => agent.notify();
  agent.start();
  return { agent, runner, vms };
}
