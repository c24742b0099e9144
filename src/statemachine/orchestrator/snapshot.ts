/**
 * The orchestrator model's snapshot: magic "BXOR", u16 format version, then canonical JSON in
 * UTF-8:
 *
 * ```
 * {"settings": {...}, "nextSeq": n,
 *  "workers": [worker, ...]            ascending node id
 *  "tasks": [{"seq": s, "task": {...}}, ...]   ascending id
 *  "vms": [{"seq": s, "vm": {...}}, ...]       ascending name
 *  "finished": [id, ...]}              finished tasks, oldest first (eviction order)
 * ```
 *
 * Every entity is rebuilt by its strict reader before it is written, so equal states give equal
 * bytes. Reading checks each entity, then everything that spans entities (each worker's
 * allocation equals the sum of what is placed on it and fits its capacity, no work on an offline
 * worker, features and anti-affinity of placed work hold, seqs unique and below `nextSeq`, the
 * finished list is exactly the finished tasks, the bounds of `limits.ts`) and throws
 * `InvalidArgumentError` on the first violation. The checksum is the enclosing snapshot's.
 */
import { InvalidArgumentError } from "../../common/index.js";
import type { NodeId } from "../../raft/types.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import type { SnapshotPart } from "../snapshot-encoding.js";
import { FieldReader, checkString, type FieldPath } from "./field-reader.js";
import {
  TASK_ID_RULES,
  isPlacedTask,
  isTerminal,
  readTask,
  readVm,
  readWorker,
} from "./entity-reader.js";
import { asMalformed, decodeJson, encodeJson } from "./json-bytes.js";
import {
  MAX_ACTIVE_TASKS,
  MAX_ACTIVE_TASK_SPEC_BYTES,
  MAX_FINISHED_TASKS,
  MAX_FINISHED_TASK_BYTES,
  MAX_VMS,
  MAX_WORKERS,
} from "./limits.js";
import { ZERO_RESOURCES, addResources, fitsWithin, resourcesEqual } from "./resources.js";
import { readSettings, taskResultBytes, taskSpecBytes } from "./spec-reader.js";
import type { PlacementRequest } from "./scheduler.js";
import {
  OrchestratorState,
  taskRequest,
  vmRequest,
  type OrchestratorStateOptions,
} from "./state.js";
import type { Task, TaskResult, Worker } from "./types.js";

/** Magic of an orchestrator snapshot: "BXOR". */
const SNAPSHOT_MAGIC = new Uint8Array([0x42, 0x58, 0x4f, 0x52]);
/** The orchestrator snapshot format this code writes and reads. */
export const ORCHESTRATOR_SNAPSHOT_FORMAT_VERSION = 1;

/** Serializes `state` deterministically (layout above). Throws nothing for a state the model built. */
export function encodeOrchestratorSnapshot(state: OrchestratorState): Uint8Array {
  const workers = [...state.workers()]
    .sort((a, b) => a.nodeId - b.nodeId)
    .map((worker) => readWorker(new FieldReader(worker, `worker ${worker.nodeId}`)));
  const tasks = [...state.taskIds].map((id) => {
    const entry = state.taskEntry(id);
    return { seq: entry?.seq, task: readTask(new FieldReader(entry?.task, `task ${id}`)) };
  });
  const vms = [...state.vmNames].map((name) => {
    const entry = state.vmEntry(name);
    return { seq: entry?.seq, vm: readVm(new FieldReader(entry?.vm, `VM ${name}`)) };
  });
  const json = encodeJson({
    settings: readSettings(new FieldReader(state.settings, "settings")),
    nextSeq: state.nextSeq,
    workers,
    tasks,
    vms,
    finished: [...state.finishedOrder()],
  });
  return new ByteWriter(json.length + 8)
    .raw(SNAPSHOT_MAGIC)
    .u16(ORCHESTRATOR_SNAPSHOT_FORMAT_VERSION)
    .raw(json)
    .finish();
}

/**
 * Captures `state` now; the part's bytes are {@link encodeOrchestratorSnapshot}'s at this call,
 * encoded a slice at a time while the state keeps changing (see `snapshot-view.ts`). Throws
 * nothing.
 */
export function captureOrchestratorSnapshot(state: OrchestratorState): SnapshotPart {
  return state.captureSnapshot(
    new ByteWriter(SNAPSHOT_MAGIC.length + 2)
      .raw(SNAPSHOT_MAGIC)
      .u16(ORCHESTRATOR_SNAPSHOT_FORMAT_VERSION)
      .finish(),
  );
}

function malformed(problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`malformed orchestrator snapshot: ${problem}`);
}

interface Sequenced<T> {
  readonly seq: number;
  readonly value: T;
}

function readSequenced<T>(
  item: unknown,
  path: FieldPath,
  name: "task" | "vm",
  read: (fields: FieldReader) => T,
  nextSeq: number,
): Sequenced<T> {
  const fields = new FieldReader(item, path);
  const seq = fields.integer("seq", 1, nextSeq - 1);
  const value = fields.object(name, read);
  fields.end();
  return { seq, value };
}

/** Checks that `what` may be placed on `nodeId` now; the state's own assertions must never fire on restore. */
function checkPlaceable(
  state: OrchestratorState,
  nodeId: NodeId,
  request: PlacementRequest,
  what: string,
): void {
  const worker = state.worker(nodeId);
  if (worker === undefined) throw malformed(`${what} is on unregistered node ${nodeId}`);
  if (worker.status === "offline" || worker.status === "drained") {
    throw malformed(`${what} is on ${worker.status} node ${nodeId}`);
  }
  if (!fitsWithin(addResources(worker.allocated, request.resources), worker.capacity)) {
    throw malformed(`${what} over-commits node ${nodeId}`);
  }
  const missing = request.requiredFeatures.filter((feature) => !worker.features.includes(feature));
  if (missing.length > 0) throw malformed(`${what} needs ${missing.join(", ")} on node ${nodeId}`);
  const group = request.antiAffinityGroup;
  if (group !== "" && state.groupNodes.get(group)?.has(nodeId) === true) {
    throw malformed(`${what} shares node ${nodeId} with its anti-affinity group ${group}`);
  }
}

function readWorkers(fields: FieldReader, state: OrchestratorState): Map<NodeId, Worker> {
  const workers = fields.array("workers", MAX_WORKERS, (item, path) =>
    readWorker(new FieldReader(item, path)),
  );
  const byNode = new Map<NodeId, Worker>();
  let previous = 0;
  for (const worker of workers) {
    if (worker.nodeId <= previous) throw malformed(`worker ${worker.nodeId} is out of order`);
    previous = worker.nodeId;
    byNode.set(worker.nodeId, worker);
    state.putWorker({ ...worker, allocated: ZERO_RESOURCES });
  }
  return byNode;
}

/**
 * Reads the tasks and puts the unfinished ones; returns the finished ones for
 * {@link readFinished}, which puts them in the order they finished.
 */
function readTasks(
  fields: FieldReader,
  state: OrchestratorState,
  seqs: Set<number>,
): Map<string, Sequenced<Task>> {
  const items = fields.array("tasks", MAX_ACTIVE_TASKS + MAX_FINISHED_TASKS, (item, path) =>
    readSequenced(item, path, "task", readTask, state.nextSeq),
  );
  const finished = new Map<string, Sequenced<Task>>();
  let previous: string | undefined;
  let active = 0;
  let activeSpecBytes = 0;
  for (const item of items) {
    const task = item.value;
    if (previous !== undefined && task.id <= previous) {
      throw malformed(`task ${task.id} is out of order`);
    }
    previous = task.id;
    if (seqs.has(item.seq)) throw malformed(`seq ${item.seq} is used twice`);
    seqs.add(item.seq);
    if (isTerminal(task.status)) {
      finished.set(task.id, item);
      continue;
    }
    active++;
    activeSpecBytes += taskSpecBytes(task.spec);
    if (isPlacedTask(task.status)) {
      checkPlaceable(state, task.nodeId as NodeId, taskRequest(task), `task ${task.id}`);
    }
    state.putTask(task, item.seq);
  }
  if (active > MAX_ACTIVE_TASKS || activeSpecBytes > MAX_ACTIVE_TASK_SPEC_BYTES) {
    throw malformed(`${active} unfinished tasks hold ${activeSpecBytes} bytes of specs`);
  }
  return finished;
}

/** Puts the finished tasks in the order of the snapshot's finished list, which must name each once. */
function readFinished(
  fields: FieldReader,
  state: OrchestratorState,
  finished: ReadonlyMap<string, Sequenced<Task>>,
): void {
  const order = fields.array("finished", MAX_FINISHED_TASKS, (item, path) =>
    checkString(item, path, TASK_ID_RULES),
  );
  if (order.length !== finished.size || new Set(order).size !== order.length) {
    throw malformed("the finished list does not name each finished task exactly once");
  }
  let bytes = 0;
  for (const id of order) {
    const item = finished.get(id);
    if (item === undefined) throw malformed(`finished task ${id} is not a finished task`);
    const task = item.value;
    bytes += taskSpecBytes(task.spec) + taskResultBytes(task.result as TaskResult);
    if (bytes > MAX_FINISHED_TASK_BYTES) throw malformed("finished tasks exceed their byte bound");
    state.putTask(task, item.seq);
  }
}

function readVms(fields: FieldReader, state: OrchestratorState, seqs: Set<number>): void {
  const items = fields.array("vms", MAX_VMS, (item, path) =>
    readSequenced(item, path, "vm", readVm, state.nextSeq),
  );
  let previous: string | undefined;
  for (const { seq, value: vm } of items) {
    if (previous !== undefined && vm.name <= previous)
      throw malformed(`VM ${vm.name} is out of order`);
    previous = vm.name;
    if (seqs.has(seq)) throw malformed(`seq ${seq} is used twice`);
    seqs.add(seq);
    if (vm.nodeId !== null) checkPlaceable(state, vm.nodeId, vmRequest(vm), `VM ${vm.name}`);
    const target = vm.migration?.targetNodeId;
    if (target !== undefined) {
      checkPlaceable(state, target, vmRequest(vm), `VM ${vm.name} (migration target)`);
    }
    state.putVm(vm, seq);
  }
}

/**
 * Reads a snapshot into a new state made with `options` (the caller swaps it in); its derived
 * indexes (placement index, queue by shape) are rebuilt as entities are put. Throws
 * `InvalidArgumentError` for anything malformed or inconsistent (see above).
 */
export function decodeOrchestratorSnapshot(
  data: Uint8Array,
  options: OrchestratorStateOptions = {},
): OrchestratorState {
  return asMalformed(() => {
    const reader = new ByteReader(data, "orchestrator snapshot");
    const magic = reader.rawView(SNAPSHOT_MAGIC.length);
    if (!magic.every((byte, i) => byte === SNAPSHOT_MAGIC[i])) {
      throw reader.malformed("not an orchestrator snapshot (bad magic)");
    }
    const version = reader.u16();
    if (version !== ORCHESTRATOR_SNAPSHOT_FORMAT_VERSION) {
      throw reader.malformed(
        `unknown format version ${version}; this node reads version ${ORCHESTRATOR_SNAPSHOT_FORMAT_VERSION}`,
      );
    }
    const fields = new FieldReader(decodeJson(reader.rest(), "orchestrator snapshot"), "snapshot");
    const state = new OrchestratorState(options);
    state.putSettings(fields.object("settings", readSettings));
    state.nextSeq = fields.integer("nextSeq", 1, Number.MAX_SAFE_INTEGER);
    const workers = readWorkers(fields, state);
    const seqs = new Set<number>();
    // VMs before tasks is arbitrary: the checks are on sums, which do not depend on the order.
    readVms(fields, state, seqs);
    readFinished(fields, state, readTasks(fields, state, seqs));
    fields.end();
    for (const worker of workers.values()) {
      const held = state.worker(worker.nodeId)?.allocated ?? ZERO_RESOURCES;
      if (!resourcesEqual(held, worker.allocated)) {
        throw malformed(`worker ${worker.nodeId}'s allocation is not the sum of its work`);
      }
      // Snapshots written before workers could be `drained` hold drained, empty workers as
      // `draining`: they read as what this version would have made of them.
      state.settleDrain(worker.nodeId);
    }
    return state;
  });
}
