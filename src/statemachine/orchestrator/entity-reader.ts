/**
 * Strict readers of the model's entities (workers, tasks, VMs) and of the names that identify
 * them. Results and snapshots are decoded with these; each checks the fields and the rules one
 * entity must satisfy on its own (a running task has a node, a finished one a result, …), returns
 * a frozen copy with its keys in a fixed order, and throws `InvalidArgumentError` or
 * `TooLargeError`. Rules that span entities (allocation, anti-affinity) are the snapshot's.
 */
import { InvalidArgumentError } from "../../common/index.js";
import { FieldReader, type StringRules } from "./field-reader.js";
import {
  MAX_ERROR_BYTES,
  MAX_TASK_ATTEMPTS,
  MAX_TASK_ID_BYTES,
  MAX_VM_NAME_BYTES,
} from "./limits.js";
import {
  readFeatures,
  readResources,
  readTaskResult,
  readTaskSpec,
  readVmSpec,
} from "./spec-reader.js";
import {
  TASK_STATUSES,
  type Task,
  type TaskStatus,
  type Vm,
  type VmMigration,
  type VmStatus,
  type Worker,
  type WorkerStatus,
} from "./types.js";

/** Task ids: letters, digits and `._-`, starting with a letter or digit, 1..128 bytes. */
export const TASK_ID_RULES: StringRules = {
  maxBytes: MAX_TASK_ID_BYTES,
  nonEmpty: true,
  pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
  patternHint: "use letters, digits and . _ - (starting with a letter or digit)",
};

/** VM names: `[a-z0-9-]{1,63}`. */
export const VM_NAME_RULES: StringRules = {
  maxBytes: MAX_VM_NAME_BYTES,
  nonEmpty: true,
  pattern: /^[a-z0-9-]+$/,
  patternHint: "use lowercase letters, digits and - (at most 63)",
};

/** Pending reasons are written by the scheduler; this only bounds what a snapshot may hold. */
const REASON_RULES: StringRules = { maxBytes: 16 * 1024 };

/**
 * Where a migration target's QEMU listens: `tcp:HOST:PORT` (a host name, an IPv4 address or a
 * bracketed IPv6 one). Only this form: the source hands it to QEMU's `migrate`, which would also
 * take `exec:` (a shell command).
 */
export const INCOMING_URI_RULES: StringRules = {
  maxBytes: 300,
  nonEmpty: true,
  pattern: /^tcp:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/,
  patternHint: "tcp:HOST:PORT",
};
/**
 * Where a migration target's disk takes the source's copy: `nbd:HOST:PORT` (the source's QEMU
 * opens it as an NBD block device; nothing else is accepted).
 */
export const DISK_URI_RULES: StringRules = {
  maxBytes: 300,
  nonEmpty: true,
  pattern: /^nbd:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/,
  patternHint: "nbd:HOST:PORT",
};
const ERROR_RULES: StringRules = { maxBytes: MAX_ERROR_BYTES };

/** The statuses a task never leaves. */
export const TERMINAL_TASK_STATUSES: readonly TaskStatus[] = [
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "lost",
];

/** True if a task with `status` has finished for good. Throws nothing. */
export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_TASK_STATUSES.includes(status);
}

/** True if a task with `status` holds resources on its node (assigned or running). Throws nothing. */
export function isPlacedTask(status: TaskStatus): boolean {
  return status === "assigned" || status === "running";
}

/** Every VM status. */
export const VM_STATUSES: readonly VmStatus[] = [
  "pending",
  "scheduled",
  "starting",
  "booting",
  "running",
  "unhealthy",
  "migrating",
  "stopping",
  "stopped",
  "failed",
];

/** Reads a raft node id: an integer ≥ 1. */
export function readNodeId(fields: FieldReader, name: string): number {
  return fields.integer(name, 1, Number.MAX_SAFE_INTEGER);
}

function readNullableNodeId(fields: FieldReader, name: string): number | null {
  return fields.nullableInteger(name, 1, Number.MAX_SAFE_INTEGER);
}

function readTime(fields: FieldReader, name: string): number {
  return fields.integer(name, 0, Number.MAX_SAFE_INTEGER);
}

/** Throws a malformed-entity error at `fields`' path. */
function inconsistent(fields: FieldReader, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`${fields.location} is inconsistent: ${problem}`);
}

/** Every worker status. */
export const WORKER_STATUSES: readonly WorkerStatus[] = [
  "online",
  "draining",
  "drained",
  "offline",
];

/**
 * Reads a worker; its features must be sorted and unique, its status must agree with `drain`,
 * and a drain deadline belongs only to a `draining` worker. `drainDeadlineMs` is optional
 * (absent in encodings written before drains had deadlines).
 */
export function readWorker(fields: FieldReader): Worker {
  const nodeId = readNodeId(fields, "nodeId");
  const capacity = fields.object("capacity", readResources);
  const features = readFeatures(fields, "features");
  const status = fields.oneOf("status", WORKER_STATUSES);
  const drain = fields.boolean("drain");
  const drainDeadlineMs = fields.optionalInteger("drainDeadlineMs", 0, Number.MAX_SAFE_INTEGER);
  const allocated = fields.object("allocated", readResources);
  const lastSeenMs = readTime(fields, "lastSeenMs");
  fields.end();
  const worker: Worker = {
    nodeId,
    capacity,
    features,
    status,
    drain,
    ...(drainDeadlineMs === undefined ? {} : { drainDeadlineMs }),
    allocated,
    lastSeenMs,
  };
  if (
    worker.features.some((feature, i) => i > 0 && (worker.features[i - 1] as string) >= feature)
  ) {
    throw inconsistent(fields, "features are not sorted and unique");
  }
  const drainStatus = worker.status === "draining" || worker.status === "drained";
  if (worker.status !== "offline" && worker.drain !== drainStatus) {
    throw inconsistent(fields, `status ${worker.status} with drain ${worker.drain}`);
  }
  if (drainDeadlineMs !== undefined && worker.status !== "draining") {
    throw inconsistent(fields, `a drain deadline on a worker ${worker.status}`);
  }
  return Object.freeze(worker);
}

/** Reads a task and checks that its status, node, attempts and result agree. */
export function readTask(fields: FieldReader): Task {
  const task: Task = {
    id: fields.string("id", TASK_ID_RULES),
    spec: fields.object("spec", readTaskSpec),
    status: fields.oneOf("status", TASK_STATUSES),
    nodeId: readNullableNodeId(fields, "nodeId"),
    attempts: fields.integer("attempts", 0, MAX_TASK_ATTEMPTS),
    result: fields.nullableObject("result", readTaskResult),
    cancelRequested: fields.boolean("cancelRequested"),
    pendingReason: fields.string("pendingReason", REASON_RULES),
    submittedAtMs: readTime(fields, "submittedAtMs"),
    updatedAtMs: readTime(fields, "updatedAtMs"),
  };
  fields.end();
  const problem = taskProblem(task);
  if (problem !== undefined) throw inconsistent(fields, problem);
  return Object.freeze(task);
}

function taskProblem(task: Task): string | undefined {
  if (task.attempts > task.spec.maxAttempts) {
    return `${task.attempts} attempts of at most ${task.spec.maxAttempts}`;
  }
  if (isTerminal(task.status) !== (task.result !== null)) {
    return `status ${task.status} ${task.result === null ? "without" : "with"} a result`;
  }
  if ((task.status === "pending") !== (task.pendingReason !== "")) {
    return `status ${task.status} with pending reason "${task.pendingReason}"`;
  }
  if (task.status === "pending") {
    if (task.nodeId !== null) return "pending on a node";
    if (task.attempts >= task.spec.maxAttempts) return "pending with no attempt left";
    if (task.cancelRequested) return "pending with a cancel requested";
  }
  if (isPlacedTask(task.status) && (task.nodeId === null || task.attempts === 0)) {
    return `${task.status} without a node or an attempt`;
  }
  return undefined;
}

/** Reads a VM and checks that its desired state, status and node agree. */
export function readVm(fields: FieldReader): Vm {
  const vm: Vm = {
    name: fields.string("name", VM_NAME_RULES),
    spec: fields.object("spec", readVmSpec),
    desired: fields.oneOf("desired", ["running", "stopped"] as const),
    status: fields.oneOf("status", VM_STATUSES),
    nodeId: readNullableNodeId(fields, "nodeId"),
    restarts: fields.integer("restarts", 0, Number.MAX_SAFE_INTEGER),
    lastError: fields.string("lastError", ERROR_RULES),
    pendingReason: fields.string("pendingReason", REASON_RULES),
    createdAtMs: readTime(fields, "createdAtMs"),
    updatedAtMs: readTime(fields, "updatedAtMs"),
    ...(fields.has("diskNodeId") ? { diskNodeId: readNodeId(fields, "diskNodeId") } : {}),
    ...(fields.has("migration") ? { migration: fields.object("migration", readMigration) } : {}),
  };
  fields.end();
  const problem = vmProblem(vm);
  if (problem !== undefined) throw inconsistent(fields, problem);
  return Object.freeze(vm);
}

function readMigration(fields: FieldReader): VmMigration {
  const incomingUri = fields.value("incomingUri");
  const migration: VmMigration = {
    targetNodeId: readNodeId(fields, "targetNodeId"),
    incomingUri: incomingUri === "" ? "" : fields.string("incomingUri", INCOMING_URI_RULES),
    ...(fields.has("diskUri") ? { diskUri: fields.string("diskUri", DISK_URI_RULES) } : {}),
    startedAtMs: readTime(fields, "startedAtMs"),
  };
  fields.end();
  return Object.freeze(migration);
}

function vmProblem(vm: Vm): string | undefined {
  if ((vm.status === "migrating") !== (vm.migration !== undefined)) {
    return `status ${vm.status} ${vm.migration === undefined ? "without" : "with"} a migration`;
  }
  if (vm.migration !== undefined) {
    if (vm.nodeId === null || vm.migration.targetNodeId === vm.nodeId) {
      return `migrating from node ${vm.nodeId} to node ${vm.migration.targetNodeId}`;
    }
    if (vm.desired !== "running") return "migrating while desired stopped";
  }
  if ((vm.status === "pending") !== (vm.pendingReason !== "")) {
    return `status ${vm.status} with pending reason "${vm.pendingReason}"`;
  }
  if (vm.nodeId === null) {
    if (vm.status !== "pending" && vm.status !== "stopped") return `${vm.status} on no node`;
    if (vm.status === "pending" && vm.desired !== "running") return "pending while desired stopped";
    if (vm.status === "stopped" && vm.desired !== "stopped") {
      return "stopped on no node while desired running";
    }
    return undefined;
  }
  if (vm.status === "pending") return "pending on a node";
  if (vm.desired === "stopped" && (vm.status === "stopped" || vm.status === "failed")) {
    return `${vm.status} and desired stopped but still on node ${vm.nodeId}`;
  }
  return undefined;
}
