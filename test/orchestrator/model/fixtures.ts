/**
 * Builders and an invariant checker shared by the orchestrator model's tests.
 */
import { expect } from "vitest";
import type { CommandError, CommandResult } from "../../../src/statemachine/command-result.js";
import type {
  OrchestratorCommand,
  OrchestratorResult,
} from "../../../src/statemachine/orchestrator/commands.js";
import { OrchestratorModel } from "../../../src/statemachine/orchestrator/model.js";
import { RAW_EXEC_FEATURE } from "../../../src/statemachine/orchestrator/features.js";
import { choosePlacement } from "../../../src/statemachine/orchestrator/scheduler.js";
import type {
  Resources,
  Task,
  TaskResult,
  TaskSpec,
  Vm,
  VmSpec,
  Worker,
} from "../../../src/statemachine/orchestrator/types.js";

/** True if two byte arrays are equal (fast, unlike a deep `toEqual` on megabytes). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Resources in millicores, MB and GB. */
export function res(cpuMillis: number, memoryMb: number, diskGb = 0): Resources {
  return { cpuMillis, memoryMb, diskGb };
}

/** A valid task spec: `echo hi` asking for 1000 millicores and 256 MB, with overrides. */
export function taskSpec(overrides: Partial<TaskSpec> = {}): TaskSpec {
  return {
    command: "echo",
    args: ["hi"],
    env: {},
    cwd: "",
    shell: false,
    resources: res(1000, 256),
    requiredFeatures: [],
    timeoutMs: 0,
    maxAttempts: 3,
    ...overrides,
  };
}

/** A valid process-driver VM spec: 1 vCPU, 512 MB, with overrides. */
export function vmSpec(overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    vcpus: 1,
    memoryMb: 512,
    diskGb: 0,
    driver: "process",
    command: "sleep",
    args: ["infinity"],
    kernel: "",
    initrd: "",
    image: "",
    cmdline: "",
    requiredFeatures: [],
    antiAffinityGroup: "",
    restart: { mode: "on-failure", maxRestarts: 3, backoffMs: 100 },
    ...overrides,
  };
}

/** A valid qemu VM spec booting a kernel. */
export function qemuSpec(overrides: Partial<VmSpec> = {}): VmSpec {
  return vmSpec({ driver: "qemu", command: "", args: [], kernel: "/boot/vmlinuz", ...overrides });
}

/** A task result with exit code 0 and `stdout`. */
export function taskResult(overrides: Partial<TaskResult> = {}): TaskResult {
  return {
    exitCode: 0,
    stdout: "hi\n",
    stderr: "",
    stdoutTruncated: false,
    stderrTruncated: false,
    durationMs: 5,
    error: "",
    ...overrides,
  };
}

/** A model with a log clock and shorthand for applying commands. */
export class Harness {
  readonly model = new OrchestratorModel();
  nowMs = 1000;

  /** Applies `command` at the current log time, then moves the clock on by 1 ms. */
  run(command: OrchestratorCommand): CommandResult<OrchestratorResult> {
    const result = this.model.apply(command, this.nowMs);
    this.nowMs += 1;
    return result;
  }

  /** Applies `command` and returns its value, failing the test on an error result. */
  ok(command: OrchestratorCommand): OrchestratorResult {
    const result = this.run(command);
    if (!result.ok) throw new Error(`${command.type} failed: ${JSON.stringify(result.error)}`);
    return result.value;
  }

  /** Applies `command`, expects an error result, checks the state did not change, returns the error. */
  err(command: OrchestratorCommand): CommandError {
    const before = this.model.snapshot();
    const result = this.run(command);
    if (result.ok) throw new Error(`${command.type} succeeded: ${JSON.stringify(result.value)}`);
    expect(sameBytes(this.model.snapshot(), before), "state unchanged by a refused command").toBe(
      true,
    );
    return result.error;
  }

  /** Registers a worker; it offers `raw_exec` (as a node started with --enable-raw-exec) unless `rawExec` is false. */
  register(nodeId: number, capacity: Resources, features: string[] = [], rawExec = true): Worker {
    const offered = rawExec ? [...features, RAW_EXEC_FEATURE] : features;
    return (
      this.ok({ type: "registerWorker", nodeId, capacity, features: offered }) as {
        worker: Worker;
      }
    ).worker;
  }

  submit(id: string, spec: Partial<TaskSpec> = {}): Task {
    return (this.ok({ type: "submitTask", id, spec: taskSpec(spec) }) as { task: Task }).task;
  }

  createVm(name: string, spec: VmSpec = vmSpec(), desired: "running" | "stopped" = "running"): Vm {
    return (this.ok({ type: "createVm", name, spec, desired }) as { vm: Vm }).vm;
  }

  task(id: string): Task {
    const task = this.model.task(id);
    if (task === undefined) throw new Error(`no task ${id}`);
    return task;
  }

  vm(name: string): Vm {
    const vm = this.model.vm(name);
    if (vm === undefined) throw new Error(`no VM ${name}`);
    return vm;
  }

  worker(nodeId: number): Worker {
    const worker = this.model.worker(nodeId);
    if (worker === undefined) throw new Error(`no worker ${nodeId}`);
    return worker;
  }

  /** Starts the task's current attempt on its node. */
  start(id: string): Task {
    const task = this.task(id);
    return (
      this.ok({
        type: "taskStarted",
        id,
        nodeId: task.nodeId as number,
        attempt: task.attempts,
      }) as { task: Task }
    ).task;
  }

  /** Finishes the task's current attempt on its node. */
  finish(
    id: string,
    outcome: "succeeded" | "failed" | "timed_out" | "cancelled" = "succeeded",
    result: TaskResult = taskResult(),
  ): Task {
    const task = this.task(id);
    return (
      this.ok({
        type: "taskFinished",
        id,
        nodeId: task.nodeId as number,
        attempt: task.attempts,
        outcome,
        result,
      }) as { task: Task }
    ).task;
  }
}

const PLACED_TASK = new Set(["assigned", "running"]);

function vmFeatures(vm: Vm): string[] {
  return vm.spec.driver === "qemu"
    ? [...vm.spec.requiredFeatures, "qemu"]
    : [...vm.spec.requiredFeatures, RAW_EXEC_FEATURE];
}

/**
 * Checks every invariant of the model from its queries alone (an oracle independent of the
 * model's own indexes): allocation equals the sum of placed work and fits capacity; nothing is
 * placed on an unregistered or offline worker; placed work has its features and anti-affinity;
 * assignments agree with the entities; no pending work could be placed now.
 */
export function checkInvariants(
  model: OrchestratorModel,
  options: { pendingUnplaceable?: boolean } = {},
): void {
  const workers = new Map(model.workers().map((worker) => [worker.nodeId, worker]));
  const sums = new Map<number, Resources>();
  const add = (nodeId: number, r: Resources) => {
    const sum = sums.get(nodeId) ?? res(0, 0, 0);
    sums.set(
      nodeId,
      res(sum.cpuMillis + r.cpuMillis, sum.memoryMb + r.memoryMb, sum.diskGb + r.diskGb),
    );
  };
  const tasks = model.tasks({ limit: 1000 });
  const placedTasks = new Map<number, string[]>();
  for (const task of tasks) {
    if (!PLACED_TASK.has(task.status)) continue;
    const worker = workers.get(task.nodeId as number);
    expect(worker, `task ${task.id}'s worker`).toBeDefined();
    expect(worker?.status).not.toBe("offline");
    for (const feature of [...task.spec.requiredFeatures, RAW_EXEC_FEATURE]) {
      expect(worker?.features).toContain(feature);
    }
    add(task.nodeId as number, task.spec.resources);
    placedTasks.set(task.nodeId as number, [
      ...(placedTasks.get(task.nodeId as number) ?? []),
      task.id,
    ]);
  }
  const groups = new Set<string>();
  const placedVms = new Map<number, string[]>();
  for (const vm of model.vms()) {
    if (vm.nodeId === null) {
      expect(["pending", "stopped"]).toContain(vm.status);
      continue;
    }
    expect(vm.status === "migrating", `VM ${vm.name} migrating iff it has a migration`).toBe(
      vm.migration !== undefined,
    );
    // A migrating VM holds its target as it holds its node.
    const target = vm.migration?.targetNodeId;
    for (const nodeId of target === undefined ? [vm.nodeId] : [vm.nodeId, target]) {
      const worker = workers.get(nodeId);
      expect(worker, `VM ${vm.name}'s worker`).toBeDefined();
      expect(worker?.status).not.toBe("offline");
      for (const feature of vmFeatures(vm)) expect(worker?.features).toContain(feature);
      add(nodeId, res(vm.spec.vcpus * 1000, vm.spec.memoryMb, vm.spec.diskGb));
      if (vm.spec.antiAffinityGroup !== "") {
        const key = `${vm.spec.antiAffinityGroup}@${nodeId}`;
        expect(groups.has(key), `anti-affinity ${key}`).toBe(false);
        groups.add(key);
      }
      placedVms.set(nodeId, [...(placedVms.get(nodeId) ?? []), vm.name]);
    }
  }
  for (const worker of workers.values()) {
    const sum = sums.get(worker.nodeId) ?? res(0, 0, 0);
    expect(worker.allocated, `node ${worker.nodeId} allocation`).toEqual(sum);
    expect(sum.cpuMillis).toBeLessThanOrEqual(worker.capacity.cpuMillis);
    expect(sum.memoryMb).toBeLessThanOrEqual(worker.capacity.memoryMb);
    expect(sum.diskGb).toBeLessThanOrEqual(worker.capacity.diskGb);
    const assignments = model.assignments(worker.nodeId);
    expect(assignments.tasks.map((task) => task.id)).toEqual(
      (placedTasks.get(worker.nodeId) ?? []).sort(),
    );
    expect(assignments.vms.map((vm) => vm.name)).toEqual(
      (placedVms.get(worker.nodeId) ?? []).sort(),
    );
    // A drained worker is `draining` exactly while it holds work; only then may a deadline wait.
    const holds = assignments.tasks.length + assignments.vms.length > 0;
    if (worker.status === "draining")
      expect(holds, `draining node ${worker.nodeId} holds work`).toBe(true);
    if (worker.status === "drained")
      expect(holds, `drained node ${worker.nodeId} holds nothing`).toBe(false);
    if (worker.drainDeadlineMs !== undefined) expect(worker.status).toBe("draining");
  }
  if (options.pendingUnplaceable === false) return;
  // No pending work could be placed now: every pass leaves only what does not fit. (Its reason
  // is as of the last pass; work placed since only lowers the "most free" figures in it.)
  const groupNodes = new Map<string, Set<number>>();
  for (const vm of model.vms()) {
    if (vm.nodeId === null || vm.spec.antiAffinityGroup === "") continue;
    const nodes = groupNodes.get(vm.spec.antiAffinityGroup) ?? new Set<number>();
    nodes.add(vm.nodeId);
    if (vm.migration !== undefined) nodes.add(vm.migration.targetNodeId);
    groupNodes.set(vm.spec.antiAffinityGroup, nodes);
  }
  const state = { workers: model.workers(), groupNodes, strategy: model.settings().placement };
  for (const task of tasks.filter((t) => t.status === "pending")) {
    const decision = choosePlacement(
      {
        resources: task.spec.resources,
        requiredFeatures: [...new Set([...task.spec.requiredFeatures, RAW_EXEC_FEATURE])].sort(),
        antiAffinityGroup: "",
      },
      state,
    );
    expect(decision.placed, `pending task ${task.id}`).toBe(false);
    expect(task.pendingReason).not.toBe("");
  }
  for (const vm of model.vms().filter((v) => v.status === "pending")) {
    const decision = choosePlacement(
      {
        resources: res(vm.spec.vcpus * 1000, vm.spec.memoryMb, vm.spec.diskGb),
        requiredFeatures: [...new Set(vmFeatures(vm))].sort(),
        antiAffinityGroup: vm.spec.antiAffinityGroup,
      },
      state,
    );
    expect(decision.placed, `pending VM ${vm.name}`).toBe(false);
    expect(vm.pendingReason).not.toBe("");
  }
}
