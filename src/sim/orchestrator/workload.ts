/**
 * The orchestrator's simulated users ("operators"): they register nothing (the agents do) but
 * submit tasks (unique ids, through sessions, so a retry never makes a second task), cancel some,
 * drain and undrain workers, switch the placement strategy, and create, start, stop, migrate and
 * delete VMs. Every choice comes from the run's seed. When told to stop, each operator undrains every
 * worker it drained, so nothing stays pending for want of an undrain.
 */
import type { Random } from "../../common/random.js";
import type { NodeId } from "../../raft/types.js";
import type {
  OrchestratorCommand,
  TaskSpec,
  VmSpec,
} from "../../statemachine/orchestrator/index.js";
import type { SimCluster } from "../cluster.js";
import { between, chance, fork, pick, type TraceHash } from "../rng.js";
import type { Scheduler } from "../scheduler.js";
import { OrchestratorClient, type ClientOutcome, type ClientTiming } from "./client.js";
import type { EventTail } from "./event-tail.js";
import { SIM_TASK_COMMAND, simTaskArgs } from "./task-spec.js";

/** What the operators do. */
export interface OrchestratorWorkloadOptions {
  readonly operators: number;
  /** Pause between an operator's commands, in ms. */
  readonly thinkMs: { readonly min: number; readonly max: number };
  /** VMs an operator creates at most. */
  readonly vmsPerOperator: number;
  readonly timing: ClientTiming;
}

/** What the operators did. */
export interface OrchestratorWorkloadCounts {
  submits: number;
  cancels: number;
  drains: number;
  undrains: number;
  settings: number;
  vmCreates: number;
  vmStarts: number;
  vmStops: number;
  vmDeletes: number;
  vmMigrations: number;
  /** Commands whose outcome stayed unknown. */
  unknown: number;
  /** Commands the model refused (a race with the model, e.g. cancelling a finished task). */
  refused: number;
}

/** Counts of a workload that did nothing yet. */
export function emptyWorkloadCounts(): OrchestratorWorkloadCounts {
  return {
    submits: 0,
    cancels: 0,
    drains: 0,
    undrains: 0,
    settings: 0,
    vmCreates: 0,
    vmStarts: 0,
    vmStops: 0,
    vmDeletes: 0,
    vmMigrations: 0,
    unknown: 0,
    refused: 0,
  };
}

/** A task an operator submitted. */
export interface SubmittedTask {
  readonly id: string;
  /** True once a submit was answered with the task: it must exist. */
  acknowledged: boolean;
}

/** Codes the model may refuse an operator's command with when the operator raced it. */
const EXPECTED_REFUSALS = new Set(["CONFLICT", "NOT_FOUND"]);

/** The operators of one run. */
export class OrchestratorWorkload {
  /** Every task id an operator submitted, answered or not. */
  readonly submitted = new Map<string, SubmittedTask>();
  /** Every VM name an operator tried to create. */
  readonly vmNames: string[] = [];
  /** Commands refused for a reason no correct system gives. */
  readonly anomalies: string[] = [];
  /** What the operators did. */
  readonly counts: OrchestratorWorkloadCounts = emptyWorkloadCounts();
  #running = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly cluster: SimCluster,
    readonly options: OrchestratorWorkloadOptions,
    private readonly trace: TraceHash,
    private readonly events: EventTail,
  ) {}

  /** Starts every operator; they stop issuing once `stopIssuing()` is true, then undrain. */
  start(stopIssuing: () => boolean): void {
    for (let i = 0; i < this.options.operators; i++) {
      const random = fork(this.random);
      const client = new OrchestratorClient(
        `operator-${i}`,
        this.scheduler,
        fork(random),
        this.cluster,
        this.options.timing,
      );
      this.#running++;
      void new Operator(this, i, random, client)
        .run(stopIssuing)
        .catch((error: unknown) => this.anomalies.push(`operator ${i} crashed: ${String(error)}`))
        .finally(() => this.#running--);
    }
  }

  /** True once every operator has finished (undrains included). */
  get done(): boolean {
    return this.#running === 0;
  }

  /** @internal Records what came of an operator's command. */
  record(operator: number, command: OrchestratorCommand, outcome: ClientOutcome): void {
    const what = `${command.type} ${describe(command)}`;
    this.trace.add(this.scheduler.now(), operator, what, outcome.kind);
    this.events.add(this.scheduler.now(), () => {
      const how = outcome.kind === "refused" ? `refused ${outcome.code}` : outcome.kind;
      return `operator ${operator}: ${what} -> ${how}`;
    });
    if (outcome.kind === "unknown") this.counts.unknown++;
    if (outcome.kind === "refused") {
      this.counts.refused++;
      // Migrating a process VM, or to the VM's own node, is refused as invalid: also a race.
      const invalidMigration = command.type === "migrateVm" && outcome.code === "INVALID_ARGUMENT";
      if (!EXPECTED_REFUSALS.has(outcome.code) && !invalidMigration) {
        this.anomalies.push(
          `operator ${operator}: ${what} refused: ${outcome.code} ${outcome.message}`,
        );
      }
    }
  }

  /** @internal */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.scheduler.schedule(ms, resolve));
  }

  /** @internal */
  memberIds(): NodeId[] {
    return this.cluster.memberIds();
  }
}

function describe(command: OrchestratorCommand): string {
  switch (command.type) {
    case "submitTask":
    case "cancelTask":
    case "taskStarted":
    case "taskFinished":
      return command.id;
    case "migrateVm":
      return `${command.name} to ${command.targetNodeId ?? "any"}`;
    case "createVm":
    case "setVmDesired":
    case "deleteVm":
    case "vmObserved":
      return "desired" in command ? `${command.name} ${command.desired}` : command.name;
    case "setWorkerDrain":
      return `${command.nodeId} ${command.draining ? "drain" : "undrain"}`;
    case "registerWorker":
    case "markWorkerOffline":
    case "drainDeadlineReached":
      return String(command.nodeId);
    case "setSettings":
      return command.settings.placement;
    case "submitTasks":
      return `${command.tasks.length} tasks`;
    case "agentReports":
      return `${command.reports.length} reports from ${command.nodeId}`;
  }
}

/** One operator. */
class Operator {
  readonly #drained = new Set<NodeId>();
  /** The VMs this operator created and has not deleted. */
  readonly #vms: string[] = [];
  /** Which of them run under the qemu driver (the ones that can migrate). */
  readonly #qemuVms = new Set<string>();
  #tasks = 0;
  #vmsCreated = 0;

  constructor(
    private readonly workload: OrchestratorWorkload,
    private readonly index: number,
    private readonly random: Random,
    private readonly client: OrchestratorClient,
  ) {}

  async run(stopIssuing: () => boolean): Promise<void> {
    const { thinkMs } = this.workload.options;
    while (!stopIssuing()) {
      await this.workload.sleep(between(this.random, thinkMs.min, thinkMs.max));
      if (stopIssuing()) break;
      await this.#act();
    }
    // Leave no worker drained: work pending for want of a worker must get one.
    for (const nodeId of [...this.#drained].sort((a, b) => a - b)) {
      for (let tries = 0; tries < 10; tries++) {
        const outcome = await this.#send({ type: "setWorkerDrain", nodeId, draining: false });
        if (outcome.kind !== "unknown") break;
      }
      this.workload.counts.undrains++;
    }
  }

  async #send(command: OrchestratorCommand): Promise<ClientOutcome> {
    const outcome = await this.client.propose(command);
    this.workload.record(this.index, command, outcome);
    return outcome;
  }

  async #act(): Promise<void> {
    const r = this.random.float();
    const counts = this.workload.counts;
    if (r < 0.55) {
      await this.#submit();
    } else if (r < 0.63) {
      const ids = [...this.workload.submitted.keys()];
      if (ids.length === 0) return;
      counts.cancels++;
      await this.#send({ type: "cancelTask", id: pick(this.random, ids) });
    } else if (r < 0.69) {
      await this.#drainOrUndrain();
    } else if (r < 0.7) {
      counts.settings++;
      const placement = chance(this.random, 0.5) ? "spread" : "binpack";
      await this.#send({ type: "setSettings", settings: { placement } });
    } else {
      await this.#vmAction();
    }
  }

  async #submit(): Promise<void> {
    const id = `t${this.index}-${++this.#tasks}`;
    const task: SubmittedTask = { id, acknowledged: false };
    this.workload.submitted.set(id, task);
    this.workload.counts.submits++;
    const outcome = await this.#send({ type: "submitTask", id, spec: this.#taskSpec(id) });
    if (outcome.kind === "ok") task.acknowledged = true;
  }

  #taskSpec(id: string): TaskSpec {
    const random = this.random;
    const long = random.float();
    const durationMs =
      long < 0.65
        ? between(random, 50, 800)
        : long < 0.9
          ? between(random, 800, 3000)
          : between(random, 3000, 8000);
    const exitCode = chance(random, 0.85) ? 0 : between(random, 1, 3);
    const features = random.float();
    return {
      command: SIM_TASK_COMMAND,
      args: simTaskArgs({ id, durationMs, exitCode }),
      env: {},
      cwd: "",
      shell: false,
      resources: {
        cpuMillis: pick(random, [250, 500, 1000, 2000]),
        memoryMb: pick(random, [128, 256, 512, 1024]),
        diskGb: pick(random, [0, 0, 1, 5]),
      },
      // Nobody has a gpu: such a task stays pending, legitimately, with its reason.
      requiredFeatures: features < 0.8 ? [] : features < 0.96 ? ["ssd"] : ["gpu"],
      timeoutMs: chance(random, 0.1) ? between(random, 100, 2000) : 0,
      maxAttempts: between(random, 1, 3),
    };
  }

  async #drainOrUndrain(): Promise<void> {
    const counts = this.workload.counts;
    const drained = [...this.#drained];
    if (drained.length > 0 && chance(this.random, 0.6)) {
      const nodeId = pick(this.random, drained);
      counts.undrains++;
      const outcome = await this.#send({ type: "setWorkerDrain", nodeId, draining: false });
      if (outcome.kind !== "unknown") this.#drained.delete(nodeId);
      return;
    }
    const nodeId = pick(this.random, this.workload.memberIds());
    counts.drains++;
    // Drained even if the outcome is unknown: undrain it at the end all the same.
    this.#drained.add(nodeId);
    await this.#send({ type: "setWorkerDrain", nodeId, draining: true });
  }

  async #vmAction(): Promise<void> {
    const counts = this.workload.counts;
    const r = this.random.float();
    if (
      this.#vms.length === 0 ||
      (r < 0.3 && this.#vms.length < this.workload.options.vmsPerOperator)
    ) {
      if (this.#vms.length >= this.workload.options.vmsPerOperator) return;
      const name = `vm-${this.index}-${++this.#vmsCreated}`;
      this.#vms.push(name);
      this.workload.vmNames.push(name);
      counts.vmCreates++;
      const desired = chance(this.random, 0.85) ? "running" : "stopped";
      const spec = this.#vmSpec();
      if (spec.driver === "qemu") this.#qemuVms.add(name);
      await this.#send({ type: "createVm", name, spec, desired });
      return;
    }
    const name = pick(this.random, this.#vms);
    if (r < 0.5) {
      counts.vmStarts++;
      await this.#send({ type: "setVmDesired", name, desired: "running" });
    } else if (r < 0.6) {
      // A bounce: stop, and start again before the stop has finished.
      counts.vmStops++;
      counts.vmStarts++;
      await this.#send({ type: "setVmDesired", name, desired: "stopped" });
      await this.workload.sleep(between(this.random, 0, 300));
      await this.#send({ type: "setVmDesired", name, desired: "running" });
    } else if (r < 0.75) {
      counts.vmStops++;
      await this.#send({ type: "setVmDesired", name, desired: "stopped" });
    } else if (r < 0.9) {
      // Mostly its qemu VMs; refused (CONFLICT) unless the VM runs, and a process VM or its own
      // node as the target are refused as invalid (an expected race too).
      const qemu = this.#vms.filter((vm) => this.#qemuVms.has(vm));
      // Without a qemu VM, a process VM now and then (refused); else nothing to migrate.
      if (qemu.length === 0 && !chance(this.random, 0.1)) return;
      const migrated = qemu.length > 0 && chance(this.random, 0.9) ? pick(this.random, qemu) : name;
      const to = chance(this.random, 0.5)
        ? pick(this.random, this.workload.memberIds())
        : undefined;
      counts.vmMigrations++;
      await this.#send({
        type: "migrateVm",
        name: migrated,
        ...(to === undefined ? {} : { targetNodeId: to }),
      });
    } else {
      counts.vmDeletes++;
      const outcome = await this.#send({ type: "deleteVm", name });
      if (outcome.kind === "ok") this.#vms.splice(this.#vms.indexOf(name), 1);
    }
  }

  #vmSpec(): VmSpec {
    const random = this.random;
    const qemu = chance(random, 0.35);
    return {
      vcpus: 1,
      memoryMb: pick(random, [256, 512]),
      // A qemu VM without a disk, so that it can be migrated.
      diskGb: qemu ? 0 : 1,
      driver: qemu ? "qemu" : "process",
      command: qemu ? "" : "sim-vm",
      args: [],
      kernel: qemu ? "/boot/vmlinuz" : "",
      initrd: "",
      image: "",
      cmdline: "",
      requiredFeatures: [],
      antiAffinityGroup: chance(random, 0.4) ? "web" : "",
      restart: {
        mode: chance(random, 0.8) ? "on-failure" : "never",
        maxRestarts: between(random, 0, 3),
        backoffMs: pick(random, [50, 200, 1000]),
      },
    };
  }
}
