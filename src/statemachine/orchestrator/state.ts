/**
 * The orchestrator model's state and its indexes, kept consistent in one place. Handlers never
 * touch an index: they build the next value of a task, VM or worker and `put` it, and the state
 * moves allocations, placement indexes, the pending queue and the finished-task order to match.
 *
 * Entities are frozen objects, replaced (never mutated) on change, so queries can hand them out.
 *
 * Determinism: nothing that changes state may depend on the iteration order of a `Map` or `Set`,
 * since that order is history (a replica restored from a snapshot inserted in another order).
 * Everything that does iterate sorts first (ids, names, node ids, sequence numbers); the one
 * history-ordered structure, the finished-task order, is written into snapshots as is.
 */
import { invariant } from "../../common/index.js";
import type { NodeId } from "../../raft/types.js";
import { SortedKeys } from "../kv/sorted-keys.js";
import { isPlacedTask, isTerminal } from "./entity-reader.js";
import { RAW_EXEC_FEATURE } from "./features.js";
import { FinishedOrder } from "./finished-order.js";
import { MAX_FINISHED_TASKS, MAX_FINISHED_TASK_BYTES } from "./limits.js";
import { PendingQueue, type PendingWork, type ShapeQueue } from "./pending-queue.js";
import { PlacementIndex } from "./placement-index.js";
import { OrchestratorSnapshotView } from "./snapshot-view.js";
import {
  ZERO_RESOURCES,
  addResources,
  fitsWithin,
  resourcesEqual,
  subtractResources,
  vmResources,
} from "./resources.js";
import {
  DEFAULT_SETTINGS,
  normalizeFeatures,
  taskResultBytes,
  taskSpecBytes,
} from "./spec-reader.js";
import type { ChangeObserver } from "../changes.js";
import { choosePlacement, type PlacementDecision, type PlacementRequest } from "./scheduler.js";
import type { OrchestratorSettings, Resources, Task, Vm, Worker } from "./types.js";

/** A task and its place in the placement queue. */
export interface TaskEntry {
  readonly task: Task;
  /** Creation order shared by tasks and VMs: pending work is placed by ascending `seq`. */
  readonly seq: number;
  /** The bytes of the spec's strings (for the active-task bound). */
  readonly specBytes: number;
}

/** A VM and its place in the placement queue. */
export interface VmEntry {
  readonly vm: Vm;
  /** Creation order shared by tasks and VMs. */
  readonly seq: number;
}

export type { PendingWork } from "./pending-queue.js";

/** Options of an {@link OrchestratorState}. */
export interface OrchestratorStateOptions {
  /**
   * Place by scanning every worker (`choosePlacement`, the reference) instead of through the
   * placement index. For tests and benches that compare the two; decisions are the same.
   */
  readonly referenceScheduler?: boolean;
}

/**
 * What a task asks of its worker: tasks run as raw processes, so the worker's `raw_exec` feature
 * too. Throws nothing.
 */
export function taskRequest(task: Task): PlacementRequest {
  return {
    resources: task.spec.resources,
    requiredFeatures: normalizeFeatures([...task.spec.requiredFeatures, RAW_EXEC_FEATURE]),
    antiAffinityGroup: "",
  };
}

/**
 * What a VM asks of its worker: a qemu VM also needs the worker's `qemu` feature, a process VM its
 * `raw_exec` feature. Throws nothing.
 */
export function vmRequest(vm: Vm): PlacementRequest {
  const implicit = vm.spec.driver === "qemu" ? "qemu" : RAW_EXEC_FEATURE;
  const features = [...vm.spec.requiredFeatures, implicit];
  return {
    resources: vmResources(vm.spec),
    requiredFeatures: normalizeFeatures(features),
    antiAffinityGroup: vm.spec.antiAffinityGroup,
  };
}

/** A VM in the placement queue: pending on no node. */
function isQueuedVm(vm: Vm): boolean {
  return vm.nodeId === null && vm.status === "pending";
}

function addToIndex<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let values = index.get(key);
  if (values === undefined) {
    values = new Set();
    index.set(key, values);
  }
  values.add(value);
}

function removeFromIndex<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const values = index.get(key);
  invariant(values?.has(value) === true, "an indexed value is removed once");
  values.delete(value);
  if (values.size === 0) index.delete(key);
}

/** The replicated model's data. Mutated only through its methods. */
export class OrchestratorState {
  settings: OrchestratorSettings = DEFAULT_SETTINGS;
  /** The `seq` the next created task or VM gets. */
  nextSeq = 1;
  readonly #workers = new Map<NodeId, Worker>();
  readonly #tasks = new Map<string, TaskEntry>();
  readonly #taskIds = new SortedKeys();
  readonly #vms = new Map<string, VmEntry>();
  readonly #vmNames = new SortedKeys();
  /** Pending tasks and VMs by request shape. */
  readonly #queue = new PendingQueue();
  /** The online workers by capacity and features: placement without a scan. */
  readonly #index = new PlacementIndex();
  readonly #referenceScheduler: boolean;
  readonly #tasksOnNode = new Map<NodeId, Set<string>>();
  readonly #vmsOnNode = new Map<NodeId, Set<string>>();
  readonly #groupNodes = new Map<string, Set<NodeId>>();
  /** Ids of finished tasks, in the order they finished (oldest first). */
  readonly #finished = new FinishedOrder();
  #finishedBytes = 0;
  #activeTaskCount = 0;
  #activeTaskSpecBytes = 0;
  /** Told which entities each change touched (see `../changes.ts`); undefined: nobody listens. */
  observer: ChangeObserver | undefined;
  /**
   * While above 0, a placement pass asked for is only noted (`passWanted`) and run once by the
   * batch command that deferred it (see `placement.ts`).
   */
  passDeferrals = 0;
  passWanted = false;
  /** Open snapshot views, handed each entry before it is replaced (see `snapshot-view.ts`). */
  #views: OrchestratorSnapshotView[] = [];

  constructor(options: OrchestratorStateOptions = {}) {
    this.#referenceScheduler = options.referenceScheduler === true;
  }

  /** The options this state was made with (a restored state takes them over). */
  get options(): OrchestratorStateOptions {
    return { referenceScheduler: this.#referenceScheduler };
  }

  // ---- reads -------------------------------------------------------------------------------

  /** The worker of `nodeId`. */
  worker(nodeId: NodeId): Worker | undefined {
    return this.#workers.get(nodeId);
  }

  /** Every worker, in no particular order (sort before anything order-sensitive). */
  workers(): IterableIterator<Worker> {
    return this.#workers.values();
  }

  /** How many workers are registered. */
  get workerCount(): number {
    return this.#workers.size;
  }

  /**
   * The task entry of `id`. A pending task comes with its effective pending reason (the one its
   * shape shares, see `pending-queue.ts`), written back so the next read costs nothing.
   */
  taskEntry(id: string): TaskEntry | undefined {
    const entry = this.#tasks.get(id);
    if (entry === undefined || entry.task.status !== "pending") return entry;
    const reason = this.#queue.followedReason(entry.seq);
    if (reason === undefined || reason === entry.task.pendingReason) return entry;
    const current = { ...entry, task: Object.freeze({ ...entry.task, pendingReason: reason }) };
    if (this.#views.length > 0) this.#preserveTask(id, entry);
    this.#tasks.set(id, current);
    return current;
  }

  /** Task ids in ascending order. */
  get taskIds(): SortedKeys {
    return this.#taskIds;
  }

  /** The VM entry of `name`; a queued VM comes with its effective pending reason (see `taskEntry`). */
  vmEntry(name: string): VmEntry | undefined {
    const entry = this.#vms.get(name);
    if (entry === undefined || !isQueuedVm(entry.vm)) return entry;
    const reason = this.#queue.followedReason(entry.seq);
    if (reason === undefined || reason === entry.vm.pendingReason) return entry;
    const current = { ...entry, vm: Object.freeze({ ...entry.vm, pendingReason: reason }) };
    if (this.#views.length > 0) this.#preserveVm(name, entry);
    this.#vms.set(name, current);
    return current;
  }

  /** VM names in ascending order. */
  get vmNames(): SortedKeys {
    return this.#vmNames;
  }

  /** How many VMs there are. */
  get vmCount(): number {
    return this.#vms.size;
  }

  /** Tasks not finished yet, and the bytes of their specs. */
  get activeTasks(): { readonly count: number; readonly specBytes: number } {
    return { count: this.#activeTaskCount, specBytes: this.#activeTaskSpecBytes };
  }

  /** Ids of finished tasks, oldest first. */
  finishedOrder(): IterableIterator<string> {
    return this.#finished.values();
  }

  /** Ids of the tasks assigned to or running on `nodeId`, sorted. */
  tasksOn(nodeId: NodeId): string[] {
    return [...(this.#tasksOnNode.get(nodeId) ?? [])].sort();
  }

  /** Names of the VMs placed on `nodeId` or migrating to it, sorted. */
  vmsOn(nodeId: NodeId): string[] {
    return [...(this.#vmsOnNode.get(nodeId) ?? [])].sort();
  }

  /** For each anti-affinity group, the nodes holding a placed VM of it (the scheduler's view). */
  get groupNodes(): ReadonlyMap<string, ReadonlySet<NodeId>> {
    return this.#groupNodes;
  }

  /** The pending work, in placement order (ascending seq); a copy of the queue (O(n log n)). */
  pendingWork(): PendingWork[] {
    return this.#queue.ordered();
  }

  /** The pending work grouped by request shape (see `pending-queue.ts`). */
  pendingShapes(): IterableIterator<ShapeQueue> {
    return this.#queue.shapes();
  }

  /** The pending work queued under `seq`. */
  pendingAt(seq: number): PendingWork | undefined {
    return this.#queue.work(seq);
  }

  /**
   * Gives all pending work of `shape` the pending reason `reason` (see `pending-queue.ts`): O(its
   * items that held a reason of their own), which are the ones reported to the observer. Items
   * that already followed the shape's reason are not reported one by one.
   */
  settleShape(shape: ShapeQueue, reason: string): void {
    for (const view of this.#views) view.preserveShape(shape);
    for (const seq of this.#queue.settle(shape, reason)) {
      const work = this.#queue.work(seq) as PendingWork;
      this.observer?.(
        work.kind === "task" ? { kind: "task", id: work.id } : { kind: "vm", name: work.name },
      );
    }
  }

  /**
   * Where `request` would be placed now, or why not: through the placement index, or by the
   * reference scan if this state was made with `referenceScheduler`. Throws nothing.
   */
  choosePlacement(request: PlacementRequest): PlacementDecision {
    if (this.#referenceScheduler) {
      return choosePlacement(request, {
        workers: this.#workers.values(),
        groupNodes: this.#groupNodes,
        strategy: this.settings.placement,
      });
    }
    return this.#index.choose(request, this.#groupNodes, this.settings.placement);
  }

  // ---- writes ------------------------------------------------------------------------------

  /**
   * Adds or replaces a worker. Its `allocated` must be what the state holds on it (zero for a new
   * worker: work is added after) and must fit its capacity.
   */
  putWorker(worker: Worker): void {
    const held = this.#workers.get(worker.nodeId)?.allocated ?? ZERO_RESOURCES;
    invariant(
      resourcesEqual(worker.allocated, held),
      () => `worker ${worker.nodeId}'s allocation is changed only by placing work`,
    );
    invariant(
      fitsWithin(worker.allocated, worker.capacity),
      () => `worker ${worker.nodeId}'s capacity is below its allocation`,
    );
    this.#setWorker(Object.freeze(worker));
  }

  /**
   * Adds (with `seq`) or replaces (keeping its seq) a task, moving its allocation and index
   * entries. A finished task is never replaced. A task that finishes may evict the oldest
   * finished tasks past the bounds in `limits.ts`.
   */
  putTask(task: Task, seq?: number): void {
    const previous = this.#tasks.get(task.id);
    if (this.#views.length > 0) this.#preserveTask(task.id, previous);
    let entry: TaskEntry;
    if (previous === undefined) {
      invariant(seq !== undefined, () => `new task ${task.id} needs a seq`);
      entry = { task: Object.freeze(task), seq, specBytes: taskSpecBytes(task.spec) };
      this.#taskIds.insert(task.id);
    } else if (previous.task.status === "pending" && task.status === "pending") {
      // Still queued (a new pending reason): the queue and the counters stay as they are.
      entry = { ...previous, task: Object.freeze(task) };
      this.#tasks.set(task.id, entry);
      this.#queue.noteReason(entry.seq, task.pendingReason);
      this.observer?.({ kind: "task", id: task.id });
      return;
    } else {
      invariant(!isTerminal(previous.task.status), () => `finished task ${task.id} changed`);
      this.#unindexTask(previous);
      entry = { ...previous, task: Object.freeze(task) };
    }
    this.#tasks.set(task.id, entry);
    this.#indexTask(entry);
    this.observer?.({ kind: "task", id: task.id });
    if (isTerminal(task.status)) this.#evictFinished();
    const left = previous?.task;
    if (left !== undefined && isPlacedTask(left.status)) this.settleDrain(left.nodeId as NodeId);
  }

  /** Adds (with `seq`) or replaces (keeping its seq) a VM, moving its allocation and index entries. */
  putVm(vm: Vm, seq?: number): void {
    const previous = this.#vms.get(vm.name);
    if (this.#views.length > 0) this.#preserveVm(vm.name, previous);
    let entry: VmEntry;
    if (previous === undefined) {
      invariant(seq !== undefined, () => `new VM ${vm.name} needs a seq`);
      entry = { vm: Object.freeze(vm), seq };
      this.#vmNames.insert(vm.name);
    } else if (isQueuedVm(previous.vm) && isQueuedVm(vm)) {
      // Still queued: the queue stays as it is.
      entry = { ...previous, vm: Object.freeze(vm) };
      this.#vms.set(vm.name, entry);
      this.#queue.noteReason(entry.seq, vm.pendingReason);
      this.observer?.({ kind: "vm", name: vm.name });
      return;
    } else {
      this.#unindexVm(previous);
      entry = { ...previous, vm: Object.freeze(vm) };
    }
    this.#vms.set(vm.name, entry);
    this.#indexVm(entry);
    this.observer?.({ kind: "vm", name: vm.name });
    const leftNode = previous?.vm.nodeId;
    if (leftNode !== undefined && leftNode !== null) this.settleDrain(leftNode);
    const leftTarget = previous?.vm.migration?.targetNodeId;
    if (leftTarget !== undefined) this.settleDrain(leftTarget);
  }

  /**
   * A `draining` worker that holds nothing any more becomes `drained` (its deadline, if any, is
   * moot). Runs whenever work leaves a node, so "draining" always means "work is still there".
   */
  settleDrain(nodeId: NodeId): void {
    const worker = this.#workers.get(nodeId);
    if (worker?.status !== "draining") return;
    if (this.#tasksOnNode.has(nodeId) || this.#vmsOnNode.has(nodeId)) return;
    const { drainDeadlineMs: _moot, ...rest } = worker;
    this.#setWorker(Object.freeze({ ...rest, status: "drained" }));
  }

  /** Removes a VM, which must hold no node. */
  removeVm(name: string): void {
    const entry = this.#vms.get(name);
    invariant(entry !== undefined && entry.vm.nodeId === null, () => `VM ${name} is removable`);
    if (this.#views.length > 0) this.#preserveVm(name, entry);
    this.#unindexVm(entry);
    this.#vms.delete(name);
    this.#vmNames.remove(name);
    this.observer?.({ kind: "vm", name });
  }

  /** Replaces the settings. */
  putSettings(settings: OrchestratorSettings): void {
    this.settings = Object.freeze(settings);
    this.observer?.({ kind: "settings" });
  }

  /**
   * Takes the next creation sequence number. Throws `InternalError` past 2^53 − 1 creations (at
   * a million a second, that is after 285 years).
   */
  takeSeq(): number {
    invariant(this.nextSeq < Number.MAX_SAFE_INTEGER, "creation sequence overflow");
    return this.nextSeq++;
  }

  // ---- snapshots ---------------------------------------------------------------------------

  /**
   * Captures the state now as a view that encodes the orchestrator snapshot (its bytes after
   * `magicAndVersion`) a slice at a time while the state keeps changing: the lists are copied
   * (one pointer per entity), and each entry replaced or removed before the view encodes it is
   * kept for the view until then (see `snapshot-view.ts`). Release the view (`SlicedSnapshot`
   * does once complete or closed), or the state keeps entries for it. Throws nothing.
   */
  captureSnapshot(magicAndVersion: Uint8Array): OrchestratorSnapshotView {
    const view = new OrchestratorSnapshotView(
      {
        magicAndVersion,
        settings: this.settings,
        nextSeq: this.nextSeq,
        workers: [...this.#workers.values()],
        tasks: this.#tasks,
        taskIds: this.#taskIds.toArray(),
        vms: this.#vms,
        vmNames: this.#vmNames.toArray(),
        finished: [...this.#finished.values()],
        queue: this.#queue,
      },
      (released) => {
        this.#views = this.#views.filter((open) => open !== released);
      },
    );
    this.#views.push(view);
    return view;
  }

  #preserveTask(id: string, previous: TaskEntry | undefined): void {
    for (const view of this.#views) view.preserveTask(id, previous);
  }

  #preserveVm(name: string, previous: VmEntry | undefined): void {
    for (const view of this.#views) view.preserveVm(name, previous);
  }

  // ---- index maintenance -------------------------------------------------------------------

  #indexTask(entry: TaskEntry): void {
    const { task } = entry;
    if (isPlacedTask(task.status)) {
      const nodeId = task.nodeId as NodeId;
      this.#allocate(nodeId, task.spec.resources, `task ${task.id}`);
      addToIndex(this.#tasksOnNode, nodeId, task.id);
    } else if (task.status === "pending") {
      this.#queue.enqueue(
        entry.seq,
        { kind: "task", id: task.id },
        taskRequest(task),
        task.pendingReason,
      );
    }
    if (isTerminal(task.status)) {
      this.#finished.add(task.id);
      this.#finishedBytes +=
        entry.specBytes + taskResultBytes(task.result as NonNullable<Task["result"]>);
    } else {
      this.#activeTaskCount++;
      this.#activeTaskSpecBytes += entry.specBytes;
    }
  }

  #unindexTask(entry: TaskEntry): void {
    const { task } = entry;
    if (isPlacedTask(task.status)) {
      const nodeId = task.nodeId as NodeId;
      this.#release(nodeId, task.spec.resources);
      removeFromIndex(this.#tasksOnNode, nodeId, task.id);
    } else if (task.status === "pending") {
      this.#queue.dequeue(entry.seq);
    }
    if (isTerminal(task.status)) {
      this.#finished.delete(task.id);
      this.#finishedBytes -=
        entry.specBytes + taskResultBytes(task.result as NonNullable<Task["result"]>);
    } else {
      this.#activeTaskCount--;
      this.#activeTaskSpecBytes -= entry.specBytes;
    }
  }

  #indexVm(entry: VmEntry): void {
    const { vm } = entry;
    if (vm.nodeId !== null) {
      this.#holdVm(vm, vm.nodeId);
      // A migration's target holds the VM too, until it has moved or the migration failed.
      if (vm.migration !== undefined) this.#holdVm(vm, vm.migration.targetNodeId);
    } else if (vm.status === "pending") {
      this.#queue.enqueue(
        entry.seq,
        { kind: "vm", name: vm.name },
        vmRequest(vm),
        vm.pendingReason,
      );
    }
  }

  #unindexVm(entry: VmEntry): void {
    const { vm } = entry;
    if (vm.nodeId !== null) {
      this.#letGoVm(vm, vm.nodeId);
      if (vm.migration !== undefined) this.#letGoVm(vm, vm.migration.targetNodeId);
    } else if (vm.status === "pending") {
      this.#queue.dequeue(entry.seq);
    }
  }

  /** Places `vm` on `nodeId` in the indexes: its resources, the node's VMs, its group's nodes. */
  #holdVm(vm: Vm, nodeId: NodeId): void {
    this.#allocate(nodeId, vmResources(vm.spec), `VM ${vm.name}`);
    addToIndex(this.#vmsOnNode, nodeId, vm.name);
    const group = vm.spec.antiAffinityGroup;
    if (group !== "") {
      invariant(
        this.#groupNodes.get(group)?.has(nodeId) !== true,
        () => `VM ${vm.name} would share node ${nodeId} with its anti-affinity group ${group}`,
      );
      addToIndex(this.#groupNodes, group, nodeId);
    }
  }

  /** Undoes {@link #holdVm}. */
  #letGoVm(vm: Vm, nodeId: NodeId): void {
    this.#release(nodeId, vmResources(vm.spec));
    removeFromIndex(this.#vmsOnNode, nodeId, vm.name);
    if (vm.spec.antiAffinityGroup !== "") {
      removeFromIndex(this.#groupNodes, vm.spec.antiAffinityGroup, nodeId);
    }
  }

  /** Removes the oldest finished tasks until both bounds on finished tasks hold. */
  #evictFinished(): void {
    while (
      this.#finished.size > MAX_FINISHED_TASKS ||
      this.#finishedBytes > MAX_FINISHED_TASK_BYTES
    ) {
      const oldest = this.#finished.oldest();
      invariant(oldest !== undefined, "finished bytes are counted only for kept tasks");
      const entry = this.#tasks.get(oldest) as TaskEntry;
      if (this.#views.length > 0) this.#preserveTask(oldest, entry);
      this.#unindexTask(entry);
      this.#tasks.delete(oldest);
      this.#taskIds.remove(oldest);
    }
  }

  /** Adds `resources` to a worker's allocation; placement never over-commits, so this must fit. */
  #allocate(nodeId: NodeId, resources: Resources, what: string): void {
    const worker = this.#workers.get(nodeId);
    invariant(worker !== undefined, () => `${what} is placed on unknown node ${nodeId}`);
    invariant(
      worker.status !== "offline" && worker.status !== "drained",
      () => `${what} is placed on ${worker.status} node ${nodeId}`,
    );
    const allocated = addResources(worker.allocated, resources);
    invariant(
      fitsWithin(allocated, worker.capacity),
      () => `${what} would over-commit node ${nodeId}`,
    );
    this.#setWorker(Object.freeze({ ...worker, allocated }));
  }

  #release(nodeId: NodeId, resources: Resources): void {
    const worker = this.#workers.get(nodeId) as Worker;
    const allocated = subtractResources(worker.allocated, resources);
    invariant(
      fitsWithin(ZERO_RESOURCES, allocated),
      () => `node ${nodeId} released more than it held`,
    );
    this.#setWorker(Object.freeze({ ...worker, allocated }));
  }

  /** Stores a worker's new value, keeping the placement index in step. */
  #setWorker(worker: Worker): void {
    const previous = this.#workers.get(worker.nodeId);
    this.#workers.set(worker.nodeId, worker);
    this.#index.update(previous, worker);
    this.observer?.({ kind: "worker", nodeId: worker.nodeId });
  }
}
