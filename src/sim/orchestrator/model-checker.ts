/**
 * The orchestrator's properties checked on every replica after every change of its model (each
 * orchestrator command applied, each snapshot restored):
 *
 * - **a task ends once** (`task-terminal-changed`, `task-outcome-diverged`): within one replica
 *   incarnation a task that reached a terminal status (succeeded, failed, timed out, cancelled,
 *   lost) never changes again; and every replica that sees it terminal sees the same outcome
 *   (status, attempt, node, exit code). So a task is never reported succeeded twice, nor
 *   succeeded on one replica and something else on another;
 * - **placed only on live workers** (`placed-on-offline-worker`): a task assigned or running, or
 *   a VM placed, on node N means N's worker is registered and not offline in that replica;
 * - **never over capacity** (`worker-over-capacity`, `allocation-mismatch`): the resources of the
 *   work placed on a worker, summed here from the tasks and VMs themselves (not from the model's
 *   own bookkeeping), fit its capacity and equal what the model says is allocated;
 * - **anti-affinity** (`anti-affinity`): two VMs of one group never share a worker.
 *
 * It also counts, once per log index, the workers that went offline and the VMs moved off them.
 */
import type { NodeId } from "../../raft/types.js";
import {
  isTerminal,
  vmResources,
  type OrchestratorQueries,
  type Resources,
  type Task,
  type Vm,
  type WorkerStatus,
} from "../../statemachine/orchestrator/index.js";
import type { Violation } from "../checkers/violation.js";

/** The most tasks one `tasks()` call returns. */
const PAGE = 1000;

/** What the checker remembers of one replica incarnation. */
interface ReplicaView {
  readonly tasks: Map<string, Task>;
  readonly workerStatus: Map<NodeId, WorkerStatus>;
  readonly vmNode: Map<string, NodeId | null>;
}

/** A task's outcome as every replica must agree on it. */
function outcomeOf(task: Task): string {
  return (
    `${task.status} in attempt ${task.attempts} on node ${task.nodeId ?? "none"} ` +
    `(exit code ${task.result?.exitCode ?? "none"})`
  );
}

function add(a: Resources, b: Resources): Resources {
  return {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryMb: a.memoryMb + b.memoryMb,
    diskGb: a.diskGb + b.diskGb,
  };
}

function fits(used: Resources, capacity: Resources): boolean {
  return (
    used.cpuMillis <= capacity.cpuMillis &&
    used.memoryMb <= capacity.memoryMb &&
    used.diskGb <= capacity.diskGb
  );
}

function same(a: Resources, b: Resources): boolean {
  return a.cpuMillis === b.cpuMillis && a.memoryMb === b.memoryMb && a.diskGb === b.diskGb;
}

function describe(r: Resources): string {
  return `${r.cpuMillis}m cpu, ${r.memoryMb} MB, ${r.diskGb} GB`;
}

/** Every task of a model, by id (paged through the query API). */
export function allTasks(model: OrchestratorQueries): Task[] {
  const tasks: Task[] = [];
  let after: string | undefined;
  for (;;) {
    const page = model.tasks(after === undefined ? { limit: PAGE } : { limit: PAGE, after });
    tasks.push(...page);
    if (page.length < PAGE) return tasks;
    after = page[page.length - 1]?.id;
  }
}

/** The continuous orchestrator checker of one run. */
export class OrchestratorModelChecker {
  readonly violations: Violation[] = [];
  readonly #replicas = new Map<string, ReplicaView>();
  /** The first terminal outcome seen of each task, and where. */
  readonly #outcomes = new Map<string, { readonly outcome: string; readonly seenOn: NodeId }>();
  /** `index:node` of each worker going offline, counted once however many replicas apply it. */
  readonly #offlineEvents = new Set<string>();
  /** `index:vm` of each VM moved off a worker that went offline. */
  readonly #moveEvents = new Set<string>();
  /** Model changes checked (for reports). */
  checks = 0;

  constructor(private readonly now: () => number) {}

  /** True once a property is broken. */
  get failed(): boolean {
    return this.violations.length > 0;
  }

  /** Workers marked offline (each event once). */
  get workersMarkedOffline(): number {
    return this.#offlineEvents.size;
  }

  /** VMs moved off a worker that went offline (each event once). */
  get vmsMoved(): number {
    return this.#moveEvents.size;
  }

  #violate(property: string, message: string): void {
    if (this.violations.some((v) => v.property === property)) return;
    this.violations.push({ property, message, atMs: this.now() });
  }

  /**
   * Replica `nodeId` (incarnation `incarnation`) changed its model: at log `index` (undefined for
   * a restored snapshot). Checks every property above on it.
   */
  onModelChanged(
    nodeId: NodeId,
    incarnation: number,
    index: number | undefined,
    model: OrchestratorQueries,
  ): void {
    this.checks++;
    const key = `${nodeId}#${incarnation}`;
    let view = this.#replicas.get(key);
    if (view === undefined) {
      view = { tasks: new Map(), workerStatus: new Map(), vmNode: new Map() };
      this.#replicas.set(key, view);
    }
    const where = `on node ${nodeId} (incarnation ${incarnation}) at ${index === undefined ? "a restored snapshot" : `index ${index}`}`;
    const used = new Map<NodeId, Resources>();
    const place = (node: NodeId, resources: Resources, what: string): void => {
      const worker = model.worker(node);
      if (worker === undefined || worker.status === "offline") {
        this.#violate(
          "placed-on-offline-worker",
          `${what} is placed on node ${node}, whose worker is ${worker?.status ?? "not registered"}, ${where}`,
        );
      }
      used.set(node, add(used.get(node) ?? { cpuMillis: 0, memoryMb: 0, diskGb: 0 }, resources));
    };

    for (const task of allTasks(model)) {
      const previous = view.tasks.get(task.id);
      if (previous !== task) {
        this.#checkTask(previous, task, nodeId, where);
        view.tasks.set(task.id, task);
      }
      if (task.status === "assigned" || task.status === "running") {
        place(task.nodeId as NodeId, task.spec.resources, `task ${task.id} (${task.status})`);
      }
    }

    const groups = new Map<string, string>();
    for (const vm of model.vms()) {
      this.#noteVmMove(view, vm, index);
      if (vm.nodeId === null) continue;
      // A migrating VM holds its target too (resources and anti-affinity) until it has moved.
      const target = vm.migration?.targetNodeId;
      for (const node of target === undefined ? [vm.nodeId] : [vm.nodeId, target]) {
        place(node, vmResources(vm.spec), `VM ${vm.name} (${vm.status})`);
        const group = vm.spec.antiAffinityGroup;
        if (group === "") continue;
        const other = groups.get(`${group}@${node}`);
        if (other !== undefined) {
          this.#violate(
            "anti-affinity",
            `VMs ${other} and ${vm.name} of group ${group} share node ${node} ${where}`,
          );
        }
        groups.set(`${group}@${node}`, vm.name);
      }
    }

    for (const worker of model.workers()) {
      const sum = used.get(worker.nodeId) ?? { cpuMillis: 0, memoryMb: 0, diskGb: 0 };
      if (!fits(sum, worker.capacity)) {
        this.#violate(
          "worker-over-capacity",
          `node ${worker.nodeId} holds ${describe(sum)} of work, over its capacity of ` +
            `${describe(worker.capacity)}, ${where}`,
        );
      }
      if (!same(sum, worker.allocated)) {
        this.#violate(
          "allocation-mismatch",
          `node ${worker.nodeId} holds ${describe(sum)} of work but the model says ` +
            `${describe(worker.allocated)} is allocated, ${where}`,
        );
      }
      const before = view.workerStatus.get(worker.nodeId);
      if (worker.status === "offline" && before !== undefined && before !== "offline") {
        if (index !== undefined) this.#offlineEvents.add(`${index}:${worker.nodeId}`);
      }
      view.workerStatus.set(worker.nodeId, worker.status);
    }
  }

  #checkTask(previous: Task | undefined, task: Task, nodeId: NodeId, where: string): void {
    if (previous !== undefined && isTerminal(previous.status)) {
      const was = outcomeOf(previous);
      if (outcomeOf(task) !== was) {
        this.#violate(
          "task-terminal-changed",
          `task ${task.id} ended ${was} but is now ${outcomeOf(task)} ${where}`,
        );
      }
    }
    if (!isTerminal(task.status)) return;
    const outcome = outcomeOf(task);
    const first = this.#outcomes.get(task.id);
    if (first === undefined) this.#outcomes.set(task.id, { outcome, seenOn: nodeId });
    else if (first.outcome !== outcome) {
      this.#violate(
        "task-outcome-diverged",
        `task ${task.id} ended ${first.outcome} on node ${first.seenOn} but ${outcome} ${where}`,
      );
    }
  }

  #noteVmMove(view: ReplicaView, vm: Vm, index: number | undefined): void {
    const before = view.vmNode.get(vm.name);
    view.vmNode.set(vm.name, vm.nodeId);
    if (index === undefined || before === undefined || before === null) return;
    if (vm.nodeId !== before && vm.lastError === `node ${before} went offline`) {
      this.#moveEvents.add(`${index}:${vm.name}`);
    }
  }
}
