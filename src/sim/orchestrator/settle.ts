/**
 * The end of an orchestrator run. After the faults heal the cluster must **settle** within a
 * bound of virtual time (the liveness property): every member runs and has applied the leader's
 * commit index; every live member is a registered worker that is not offline; no task is assigned
 * or running any more (each submitted task ran to an end, or waits for a worker that cannot take
 * it); every VM wanted running runs (or failed for good, or cannot be placed) and every VM wanted
 * stopped has been released; and every agent runs exactly what the model gives its node.
 *
 * Once settled, the model (the leader's replica: all replicas are equal by then) is compared with
 * what really runs on the simulated machines:
 *
 * - `orchestrator-runs-twice`: no task or VM has processes on two nodes;
 * - `orchestrator-orphan-process`: every process is one the model assigns to its node (a task's
 *   current attempt, a VM placed there and wanted running);
 * - `orchestrator-vm-not-running`: every VM the model shows running has its process on its node;
 * - `orchestrator-task-lost`: every acknowledged submit exists in the model;
 * - `orchestrator-stuck`: every task is terminal or legitimately pending (a reason is given and
 *   the scheduler really cannot place it now); every pending VM likewise.
 *
 * Nodes outside the final configuration (a member removed while its process was kept) are left
 * out: the cluster cannot reach them, so nothing can stop what they run.
 */
import type { Agent } from "../../orchestrator/agent/agent.js";
import type { NodeId } from "../../raft/types.js";
import {
  RAW_EXEC_FEATURE,
  choosePlacement,
  vmResources,
  type OrchestratorQueries,
  type PlacementRequest,
  type Task,
  type Vm,
} from "../../statemachine/orchestrator/index.js";
import type { SimCluster } from "../cluster.js";
import { LivenessChecker } from "../checkers/liveness.js";
import type { Violation } from "../checkers/violation.js";
import type { SimAgentFleet } from "./agent-fleet.js";
import type { OrchestratorHosts } from "./hosts.js";
import { allTasks } from "./model-checker.js";
import type { SimProcess, SimProcessTable } from "./processes.js";
import type { SubmittedTask } from "./workload.js";

/** What the settle checks look at. */
export interface SettleView {
  readonly cluster: SimCluster;
  readonly hosts: OrchestratorHosts;
  readonly processes: SimProcessTable;
  readonly submitted: ReadonlyMap<string, SubmittedTask>;
  /** The agent-only workers of the run, if any. */
  readonly fleet?: SimAgentFleet;
}

/** The leader's model and configuration, if exactly one running node leads. */
export function leaderView(
  cluster: SimCluster,
): { readonly model: OrchestratorQueries; readonly members: readonly NodeId[] } | undefined {
  const leaders = cluster.liveIds().filter((id) => cluster.runningNode(id)?.isLeader === true);
  const leader = leaders[0];
  if (leader === undefined || leaders.length > 1) return undefined;
  const machine = cluster.slot(leader).stateMachine;
  const node = cluster.runningNode(leader);
  if (machine === undefined || node === undefined) return undefined;
  const config = node.status().config;
  return { model: machine.orchestrator, members: [...config.voters, ...config.learners] };
}

/** Why the cluster has not settled yet (empty: it has). Throws nothing. */
export function unsettled(view: SettleView): string[] {
  const { cluster, hosts } = view;
  const leader = leaderView(cluster);
  if (leader === undefined) return ["no single running leader"];
  if (!LivenessChecker.converged(cluster)) return ["replicas have not applied the leader's commit"];
  const { model, members } = leader;
  const reasons: string[] = [];
  for (const id of members) {
    const slot = cluster.slot(id);
    // A node whose storage failed loudly stays down; its work moves when it is marked offline.
    if (slot.state === "failed") continue;
    if (slot.state !== "running") {
      reasons.push(`node ${id} is ${slot.state}`);
      continue;
    }
    const worker = model.worker(id);
    const machine = hosts.machine(id);
    if (worker === undefined || worker.status === "offline") {
      reasons.push(`worker ${id} is ${worker?.status ?? "not registered"}`);
    } else if (worker.capacity.cpuMillis !== machine.capacity.cpuMillis) {
      reasons.push(`worker ${id} is registered with another capacity`);
    }
    agentUnsettled(model, id, hosts.host(id)?.agent, reasons);
  }
  const agentIds = view.fleet?.ids ?? [];
  for (const id of agentIds) {
    const worker = model.worker(id);
    if (worker === undefined || worker.status === "offline") {
      reasons.push(`agent-only worker ${id} is ${worker?.status ?? "not registered"}`);
    }
    const host = view.fleet?.host(id);
    if (host?.remote.disconnected === true) reasons.push(`agent ${id} is cut off`);
    agentUnsettled(model, id, host?.remote.agent, reasons);
  }
  // A removed member is never heard from again, so the leader's liveness monitor marks its
  // worker offline and moves its work; until then the model still gives it VMs and tasks that
  // nothing runs (the comparison below leaves non-members out), so the cluster has not settled.
  const inConfig = new Set([...members, ...agentIds]);
  for (const worker of model.workers()) {
    if (!inConfig.has(worker.nodeId) && worker.status !== "offline") {
      reasons.push(`worker ${worker.nodeId} is not a member but is still ${worker.status}`);
    }
  }
  for (const task of allTasks(model)) {
    if (task.status === "assigned" || task.status === "running") {
      reasons.push(`task ${task.id} is ${task.status} on node ${task.nodeId}`);
    }
  }
  for (const vm of model.vms()) {
    if (vm.nodeId === null) continue;
    if (vm.desired === "stopped") {
      reasons.push(`VM ${vm.name} is wanted stopped but is ${vm.status} on node ${vm.nodeId}`);
    } else if (vm.status !== "running" && vm.status !== "failed") {
      reasons.push(`VM ${vm.name} is wanted running but is ${vm.status} on node ${vm.nodeId}`);
    }
  }
  return reasons;
}

/** Why node `id`'s agent does not run exactly what `model` gives the node (appended to `reasons`). */
function agentUnsettled(
  model: OrchestratorQueries,
  id: NodeId,
  agent: Pick<Agent, "runningTasks" | "runningVms"> | undefined,
  reasons: string[],
): void {
  if (agent === undefined) {
    reasons.push(`node ${id} runs no agent`);
    return;
  }
  const tasks = agent.runningTasks();
  if (tasks.length > 0) reasons.push(`agent ${id} still runs tasks ${tasks.join(", ")}`);
  const wanted = model
    .assignments(id)
    .vms.filter((vm) => vm.desired === "running" && vm.status === "running")
    .map((vm) => vm.name)
    .join(",");
  const runs = agent.runningVms().join(",");
  if (runs !== wanted) reasons.push(`agent ${id} runs VMs [${runs}], the model [${wanted}]`);
}

function taskRequest(task: Task): PlacementRequest {
  return {
    resources: task.spec.resources,
    requiredFeatures: [...task.spec.requiredFeatures, RAW_EXEC_FEATURE],
    antiAffinityGroup: "",
  };
}

function vmRequest(vm: Vm): PlacementRequest {
  const features = vm.spec.requiredFeatures;
  return {
    resources: vmResources(vm.spec),
    requiredFeatures: [...features, vm.spec.driver === "qemu" ? "qemu" : RAW_EXEC_FEATURE],
    antiAffinityGroup: vm.spec.antiAffinityGroup,
  };
}

/** Where pending work could be placed now, or undefined if nowhere (as the scheduler sees it). */
function placeableOn(model: OrchestratorQueries, request: PlacementRequest): NodeId | undefined {
  const groupNodes = new Map<string, Set<NodeId>>();
  for (const vm of model.vms()) {
    const group = vm.spec.antiAffinityGroup;
    if (vm.nodeId === null || group === "") continue;
    let nodes = groupNodes.get(group);
    if (nodes === undefined) groupNodes.set(group, (nodes = new Set()));
    nodes.add(vm.nodeId);
  }
  const decision = choosePlacement(request, {
    workers: model.workers(),
    groupNodes,
    strategy: model.settings().placement,
  });
  return decision.placed ? decision.nodeId : undefined;
}

/**
 * Compares the settled model with what runs (the properties of the module comment). Call only
 * once {@link unsettled} is empty.
 */
export function checkSettled(view: SettleView, nowMs: number): Violation[] {
  const leader = leaderView(view.cluster);
  if (leader === undefined) return [];
  const { model, members } = leader;
  const violations: Violation[] = [];
  const violate = (property: string, message: string): void => {
    if (violations.some((v) => v.property === property)) return;
    violations.push({ property, message, atMs: nowMs });
  };
  const describeProcess = (p: SimProcess): string =>
    `${p.kind} ${p.name}${p.kind === "task" ? ` attempt ${p.attempt}` : ""} on node ${p.nodeId}`;

  const inCluster = new Set([...members, ...(view.fleet?.ids ?? [])]);
  const processes = view.processes.running().filter((p) => inCluster.has(p.nodeId));
  const where = new Map<string, Set<NodeId>>();
  for (const p of processes) {
    const key = `${p.kind} ${p.name}`;
    let nodes = where.get(key);
    if (nodes === undefined) where.set(key, (nodes = new Set()));
    nodes.add(p.nodeId);
    if (nodes.size > 1) {
      violate("orchestrator-runs-twice", `${key} runs on nodes ${[...nodes].join(" and ")}`);
    }
    if (!assignedHere(model, p)) {
      violate(
        "orchestrator-orphan-process",
        `${describeProcess(p)} runs, but the model does not give it to that node ` +
          `(${describeInModel(model, p)})`,
      );
    }
  }
  for (const vm of model.vms()) {
    if (vm.nodeId === null || vm.desired !== "running" || vm.status !== "running") continue;
    if (!processes.some((p) => p.kind === "vm" && p.name === vm.name && p.nodeId === vm.nodeId)) {
      violate(
        "orchestrator-vm-not-running",
        `VM ${vm.name} is running on node ${vm.nodeId} in the model, but no process of it runs there`,
      );
    }
  }
  for (const submitted of view.submitted.values()) {
    if (submitted.acknowledged && model.task(submitted.id) === undefined) {
      violate("orchestrator-task-lost", `task ${submitted.id} was acknowledged but is gone`);
    }
  }
  for (const task of allTasks(model)) {
    if (task.status !== "pending") continue;
    const node = placeableOn(model, taskRequest(task));
    if (task.pendingReason === "" || node !== undefined) {
      violate(
        "orchestrator-stuck",
        `task ${task.id} is pending (${task.pendingReason || "no reason"}) although ` +
          (node === undefined ? "it gives no reason" : `node ${node} can take it`),
      );
    }
  }
  for (const vm of model.vms()) {
    if (vm.status !== "pending") continue;
    const node = placeableOn(model, vmRequest(vm));
    if (vm.pendingReason === "" || node !== undefined) {
      violate(
        "orchestrator-stuck",
        `VM ${vm.name} is pending (${vm.pendingReason || "no reason"}) although ` +
          (node === undefined ? "it gives no reason" : `node ${node} can take it`),
      );
    }
  }
  return violations;
}

/** True if the model gives the process's work to its node. */
function assignedHere(model: OrchestratorQueries, p: SimProcess): boolean {
  if (p.kind === "task") {
    const task = model.task(p.name);
    return (
      task !== undefined &&
      (task.status === "assigned" || task.status === "running") &&
      task.nodeId === p.nodeId &&
      task.attempts === p.attempt
    );
  }
  const vm = model.vm(p.name);
  return vm !== undefined && vm.nodeId === p.nodeId && vm.desired === "running";
}

function describeInModel(model: OrchestratorQueries, p: SimProcess): string {
  if (p.kind === "task") {
    const task = model.task(p.name);
    return task === undefined
      ? "no such task"
      : `${task.status} in attempt ${task.attempts} on node ${task.nodeId ?? "none"}`;
  }
  const vm = model.vm(p.name);
  return vm === undefined
    ? "no such VM"
    : `${vm.status}, wanted ${vm.desired}, on node ${vm.nodeId ?? "none"}`;
}
