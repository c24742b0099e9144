/**
 * The orchestrator's checkers can fail: the continuous model checker against states the real
 * model never reaches (a finished task changing, work on an offline or overfull worker, two VMs
 * of a group together), and the settle checks against processes that do not match the model.
 */
import { describe, expect, it } from "vitest";
import type { SimCluster } from "../../src/sim/cluster.js";
import type { OrchestratorHosts } from "../../src/sim/orchestrator/hosts.js";
import { OrchestratorModelChecker } from "../../src/sim/orchestrator/model-checker.js";
import { SimProcessTable, type SimProcess } from "../../src/sim/orchestrator/processes.js";
import { checkSettled } from "../../src/sim/orchestrator/settle.js";
import type { SubmittedTask } from "../../src/sim/orchestrator/workload.js";
import { ObservedStateMachine } from "../../src/sim/state-machine.js";
import {
  ClusterStateMachine,
  encodeOrchestratorCommand,
} from "../../src/statemachine/cluster/index.js";
import {
  DEFAULT_SETTINGS,
  type OrchestratorCommand,
  type OrchestratorQueries,
  type Task,
  type Vm,
  type Worker,
} from "../../src/statemachine/orchestrator/index.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import { res, taskResult, taskSpec, vmSpec } from "../orchestrator/model/fixtures.js";

function worker(nodeId: number, overrides: Partial<Worker> = {}): Worker {
  return {
    nodeId,
    capacity: res(2000, 2048, 10),
    features: ["raw_exec"],
    status: "online",
    drain: false,
    allocated: res(0, 0, 0),
    lastSeenMs: 0,
    ...overrides,
  };
}

function task(id: string, overrides: Partial<Task> = {}): Task {
  return {
    id,
    spec: taskSpec({ resources: res(1000, 256) }),
    status: "pending",
    nodeId: null,
    attempts: 0,
    result: null,
    cancelRequested: false,
    pendingReason: "waiting",
    submittedAtMs: 0,
    updatedAtMs: 0,
    ...overrides,
  };
}

function vm(name: string, overrides: Partial<Vm> = {}): Vm {
  return {
    name,
    spec: vmSpec(),
    desired: "running",
    status: "running",
    nodeId: 1,
    restarts: 0,
    lastError: "",
    pendingReason: "",
    createdAtMs: 0,
    updatedAtMs: 0,
    ...overrides,
  };
}

/** A model made of plain values (any state, possible or not). */
function model(state: { workers?: Worker[]; tasks?: Task[]; vms?: Vm[] }): OrchestratorQueries {
  const workers = state.workers ?? [];
  const tasks = [...(state.tasks ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
  const vms = state.vms ?? [];
  return {
    workers: () => workers,
    worker: (id) => workers.find((w) => w.nodeId === id),
    task: (id) => tasks.find((t) => t.id === id),
    tasks: (options = {}) =>
      tasks
        .filter((t) => options.after === undefined || t.id > options.after)
        .slice(0, options.limit ?? 100),
    vm: (name) => vms.find((v) => v.name === name),
    vms: () => vms,
    assignments: (nodeId) => ({
      tasks: tasks.filter((t) => t.nodeId === nodeId),
      vms: vms.filter((v) => v.nodeId === nodeId),
    }),
    settings: () => DEFAULT_SETTINGS,
  };
}

const succeeded = task("t", {
  status: "succeeded",
  nodeId: 1,
  attempts: 1,
  result: taskResult(),
});

describe("OrchestratorModelChecker", () => {
  it("accepts what the real model does", () => {
    const checker = new OrchestratorModelChecker(() => 0);
    const inner = new ClusterStateMachine();
    const machine = new ObservedStateMachine(inner, inner, {
      onApply: () => undefined,
      onModelChanged: (index) => checker.onModelChanged(1, 1, index, inner.orchestrator),
    });
    let index = 0;
    const apply = (command: OrchestratorCommand) =>
      machine.apply({
        index: ++index,
        term: 1,
        data: encodeCommandEnvelope({
          proposedAtMs: index,
          payload: encodeOrchestratorCommand(command),
        }),
      });
    for (const nodeId of [1, 2]) {
      apply({
        type: "registerWorker",
        nodeId,
        capacity: res(2000, 2048, 10),
        features: ["raw_exec"],
      });
    }
    apply({ type: "submitTask", id: "a", spec: taskSpec({ maxAttempts: 2 }) });
    apply({ type: "createVm", name: "v", spec: vmSpec(), desired: "running" });
    apply({ type: "taskStarted", id: "a", nodeId: 1, attempt: 1 });
    apply({ type: "markWorkerOffline", nodeId: 1 });
    apply({ type: "taskStarted", id: "a", nodeId: 2, attempt: 2 });
    apply({
      type: "taskFinished",
      id: "a",
      nodeId: 2,
      attempt: 2,
      outcome: "succeeded",
      result: taskResult(),
    });
    expect(machine.orchestrator.task("a")?.status).toBe("succeeded");
    expect(checker.checks).toBeGreaterThan(5);
    expect(checker.violations).toEqual([]);
    expect(checker.workersMarkedOffline).toBe(1);
    expect(checker.vmsMoved).toBe(1);
  });

  it("catches a finished task that changes on a replica", () => {
    const checker = new OrchestratorModelChecker(() => 7);
    const workers = [worker(1)];
    checker.onModelChanged(1, 1, 10, model({ workers, tasks: [succeeded] }));
    expect(checker.failed).toBe(false);
    checker.onModelChanged(1, 1, 11, model({ workers, tasks: [task("t")] }));
    expect(checker.violations).toMatchObject([{ property: "task-terminal-changed", atMs: 7 }]);
    expect(checker.violations[0]?.message).toContain("task t ended succeeded");
  });

  it("catches replicas that disagree on how a task ended", () => {
    const checker = new OrchestratorModelChecker(() => 0);
    const workers = [worker(1)];
    checker.onModelChanged(1, 1, 10, model({ workers, tasks: [succeeded] }));
    // Another replica, and a later incarnation of the first, see it end another way.
    const failed = { ...succeeded, status: "failed" as const };
    checker.onModelChanged(1, 2, undefined, model({ workers, tasks: [failed] }));
    expect(checker.violations.map((v) => v.property)).toEqual(["task-outcome-diverged"]);
  });

  it("catches work placed on an offline or unknown worker", () => {
    const checker = new OrchestratorModelChecker(() => 0);
    const running = task("t", { status: "running", nodeId: 1, attempts: 1 });
    checker.onModelChanged(
      2,
      1,
      5,
      model({
        workers: [worker(1, { status: "offline", allocated: res(1000, 256) })],
        tasks: [running],
      }),
    );
    expect(checker.violations.map((v) => v.property)).toEqual(["placed-on-offline-worker"]);

    const other = new OrchestratorModelChecker(() => 0);
    other.onModelChanged(1, 1, 5, model({ workers: [], vms: [vm("v", { nodeId: 3 })] }));
    expect(other.violations[0]?.message).toContain("not registered");
  });

  it("catches a worker over its capacity, and bookkeeping that disagrees with the work", () => {
    const checker = new OrchestratorModelChecker(() => 0);
    const tasks = ["a", "b", "c"].map((id) =>
      task(id, { status: "assigned", nodeId: 1, attempts: 1 }),
    );
    checker.onModelChanged(
      1,
      1,
      5,
      model({ workers: [worker(1, { allocated: res(3000, 768) })], tasks }),
    );
    expect(checker.violations.map((v) => v.property)).toEqual(["worker-over-capacity"]);

    const other = new OrchestratorModelChecker(() => 0);
    other.onModelChanged(1, 1, 5, model({ workers: [worker(1)], tasks: tasks.slice(0, 1) }));
    expect(other.violations.map((v) => v.property)).toEqual(["allocation-mismatch"]);
  });

  it("catches two VMs of one anti-affinity group on one worker", () => {
    const checker = new OrchestratorModelChecker(() => 0);
    const spec = vmSpec({ antiAffinityGroup: "web" });
    checker.onModelChanged(
      1,
      1,
      5,
      model({
        workers: [worker(1, { allocated: res(2000, 1024, 0) })],
        vms: [vm("a", { spec }), vm("b", { spec })],
      }),
    );
    expect(checker.violations.map((v) => v.property)).toEqual(["anti-affinity"]);
  });
});

describe("checkSettled", () => {
  /** A cluster of nodes 1 and 2 led by node 1, whose model the test builds through commands. */
  function settled(commands: OrchestratorCommand[]) {
    const inner = new ClusterStateMachine();
    const machine = new ObservedStateMachine(inner, inner, {
      onApply: () => undefined,
      onModelChanged: () => undefined,
    });
    commands.forEach((command, i) => {
      const result = machine.apply({
        index: i + 1,
        term: 1,
        data: encodeCommandEnvelope({
          proposedAtMs: i,
          payload: encodeOrchestratorCommand(command),
        }),
      });
      expect(result.ok).toBe(true);
    });
    const cluster = {
      liveIds: () => [1],
      runningNode: () => ({
        isLeader: true,
        status: () => ({ config: { voters: [1, 2], learners: [] } }),
      }),
      slot: () => ({ stateMachine: machine }),
    } as unknown as SimCluster;
    const processes = new SimProcessTable();
    const submitted = new Map<string, SubmittedTask>();
    const view = {
      cluster,
      hosts: {} as OrchestratorHosts,
      processes,
      submitted,
    };
    const run = (p: Partial<SimProcess> & Pick<SimProcess, "kind" | "name" | "nodeId">) =>
      processes.start({ incarnation: 1, attempt: 0, startedAtMs: 0, ...p });
    return { view, run, submitted, check: () => checkSettled(view, 99) };
  }

  const register: OrchestratorCommand = {
    type: "registerWorker",
    nodeId: 1,
    capacity: res(4000, 4096, 10),
    features: ["raw_exec"],
  };
  const runningVm: OrchestratorCommand[] = [
    register,
    { type: "createVm", name: "v", spec: vmSpec(), desired: "running" },
    { type: "vmObserved", name: "v", nodeId: 1, status: "running", restarts: 0, error: "" },
  ];

  it("passes when what runs is what the model says", () => {
    const { run, check } = settled(runningVm);
    run({ kind: "vm", name: "v", nodeId: 1 });
    expect(check()).toEqual([]);
  });

  it("catches a VM the model shows running with no process", () => {
    const { check } = settled(runningVm);
    expect(check().map((v) => v.property)).toEqual(["orchestrator-vm-not-running"]);
  });

  it("catches a VM running on two nodes, and processes the model gives to no node", () => {
    const twice = settled(runningVm);
    twice.run({ kind: "vm", name: "v", nodeId: 1 });
    twice.run({ kind: "vm", name: "v", nodeId: 2 });
    expect(twice.check().map((v) => v.property)).toEqual([
      "orchestrator-runs-twice",
      "orchestrator-orphan-process",
    ]);

    const orphan = settled(runningVm);
    orphan.run({ kind: "vm", name: "v", nodeId: 1 });
    orphan.run({ kind: "task", name: "gone", nodeId: 1, attempt: 1 });
    expect(orphan.check().map((v) => v.property)).toEqual(["orchestrator-orphan-process"]);
  });

  it("leaves out processes on nodes outside the configuration", () => {
    const { run, check } = settled(runningVm);
    run({ kind: "vm", name: "v", nodeId: 1 });
    run({ kind: "vm", name: "v", nodeId: 3 });
    expect(check()).toEqual([]);
  });

  it("catches an acknowledged task that vanished", () => {
    const { submitted, check } = settled([register]);
    submitted.set("t", { id: "t", acknowledged: true });
    submitted.set("maybe", { id: "maybe", acknowledged: false });
    expect(check().map((v) => v.property)).toEqual(["orchestrator-task-lost"]);
  });

  it("accepts a task pending for a reason the scheduler confirms", () => {
    const { check } = settled([
      register,
      { type: "submitTask", id: "gpu", spec: taskSpec({ requiredFeatures: ["gpu"] }) },
    ]);
    expect(check()).toEqual([]);
  });
});
