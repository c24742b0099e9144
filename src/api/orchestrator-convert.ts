/**
 * Translations between the orchestrator's model and the JSON of its routes: requests get their
 * documented defaults filled in (the schema's `default`s say the same, for the OpenAPI reader),
 * responses are plain copies of the model. The model and the wire shapes are one-to-one, and the
 * compiler checks it: each `...ToJson` returns the schema's static type from the model's.
 */
import type {
  OrchestratorSettings,
  Task,
  TaskSpec,
  TaskStatus,
  Vm,
  VmSpec,
  Worker,
} from "../statemachine/orchestrator/types.js";
import type { TaskLogs } from "./orchestrator-service.js";
import {
  DEFAULT_RESTART_POLICY,
  DEFAULT_VM_HEALTH,
  DEFAULT_TASK_RESOURCES,
  REDACTED_VALUE,
  TASK_SPEC_DEFAULTS,
  VM_SPEC_DEFAULTS,
  type OrchestratorSettingsJson,
  type TaskJson,
  type TaskLogsResponse,
  type TaskSpecRequest,
  type TaskStatusJson,
  type VmJson,
  type VmSpecRequest,
  type WorkerJson,
} from "./schema/orchestrator.js";

/** Compiles only when `T` is `true`. */
type Assert<T extends true> = T;
/** True when A and B are the same union (each is assignable to the other). */
type SameSet<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** The wire's task statuses and the model's are one set: a status added to one only fails here. */
type _TaskStatusesMatch = Assert<SameSet<TaskStatus, TaskStatusJson>>;

/** A task spec from its request, defaults filled in (not yet checked). Throws nothing. */
export function taskSpecFromRequest(json: TaskSpecRequest): TaskSpec {
  const resources = json.resources ?? {};
  // Entries, then fromEntries: a name like "__proto__" stays a plain entry.
  const plain: [string, string][] = [];
  const secret: [string, string][] = [];
  for (const [name, value] of Object.entries(json.env ?? TASK_SPEC_DEFAULTS.env)) {
    if (typeof value === "string") plain.push([name, value]);
    else (value.secret ? secret : plain).push([name, value.value]);
  }
  const env = Object.fromEntries(plain);
  const secretEnv = Object.fromEntries(secret);
  return {
    command: json.command,
    args: [...(json.args ?? TASK_SPEC_DEFAULTS.args)],
    env,
    ...(Object.keys(secretEnv).length === 0 ? {} : { secretEnv }),
    cwd: json.cwd ?? TASK_SPEC_DEFAULTS.cwd,
    shell: json.shell ?? TASK_SPEC_DEFAULTS.shell,
    resources: {
      cpuMillis: resources.cpuMillis ?? DEFAULT_TASK_RESOURCES.cpuMillis,
      memoryMb: resources.memoryMb ?? DEFAULT_TASK_RESOURCES.memoryMb,
      diskGb: resources.diskGb ?? DEFAULT_TASK_RESOURCES.diskGb,
    },
    requiredFeatures: [...(json.requiredFeatures ?? TASK_SPEC_DEFAULTS.requiredFeatures)],
    timeoutMs: json.timeoutMs ?? TASK_SPEC_DEFAULTS.timeoutMs,
    maxAttempts: json.maxAttempts ?? TASK_SPEC_DEFAULTS.maxAttempts,
  };
}

/** A VM spec from its request, defaults filled in (not yet checked). Throws nothing. */
export function vmSpecFromRequest(json: VmSpecRequest): VmSpec {
  const restart = json.restart ?? {};
  const d = VM_SPEC_DEFAULTS;
  return {
    vcpus: json.vcpus ?? d.vcpus,
    memoryMb: json.memoryMb ?? d.memoryMb,
    diskGb: json.diskGb ?? d.diskGb,
    driver: json.driver,
    command: json.command ?? d.command,
    args: [...(json.args ?? d.args)],
    kernel: json.kernel ?? d.kernel,
    initrd: json.initrd ?? d.initrd,
    image: json.image ?? d.image,
    cmdline: json.cmdline ?? d.cmdline,
    requiredFeatures: [...(json.requiredFeatures ?? d.requiredFeatures)],
    antiAffinityGroup: json.antiAffinityGroup ?? d.antiAffinityGroup,
    restart: {
      mode: restart.mode ?? DEFAULT_RESTART_POLICY.mode,
      maxRestarts: restart.maxRestarts ?? DEFAULT_RESTART_POLICY.maxRestarts,
      backoffMs: restart.backoffMs ?? DEFAULT_RESTART_POLICY.backoffMs,
    },
    ...(json.publish === undefined || json.publish.length === 0
      ? {}
      : { publish: json.publish.map((p) => ({ hostPort: p.hostPort, guestPort: p.guestPort })) }),
    ...(json.health === undefined
      ? {}
      : {
          health: {
            tcpPort: json.health.tcpPort ?? 0,
            command: json.health.command ?? "",
            intervalMs: json.health.intervalMs ?? DEFAULT_VM_HEALTH.intervalMs,
            timeoutMs: json.health.timeoutMs ?? DEFAULT_VM_HEALTH.timeoutMs,
            failureThreshold: json.health.failureThreshold ?? DEFAULT_VM_HEALTH.failureThreshold,
          },
        }),
  };
}

/** A worker as JSON. Throws nothing. */
export function workerToJson(worker: Worker): WorkerJson {
  return {
    nodeId: worker.nodeId,
    capacity: { ...worker.capacity },
    features: [...worker.features],
    status: worker.status,
    drain: worker.drain,
    ...(worker.drainDeadlineMs === undefined ? {} : { drainDeadlineMs: worker.drainDeadlineMs }),
    allocated: { ...worker.allocated },
    lastSeenMs: worker.lastSeenMs,
  };
}

/** A task as JSON. Throws nothing. */
export function taskToJson(task: Task): TaskJson {
  const { spec } = task;
  return {
    id: task.id,
    spec: {
      command: spec.command,
      args: [...spec.args],
      // Secret values never leave the node through the API: the name only.
      env: {
        ...spec.env,
        ...Object.fromEntries(
          Object.keys(spec.secretEnv ?? {}).map((name) => [
            name,
            { value: REDACTED_VALUE, secret: true } as const,
          ]),
        ),
      },
      cwd: spec.cwd,
      shell: spec.shell,
      resources: { ...spec.resources },
      requiredFeatures: [...spec.requiredFeatures],
      timeoutMs: spec.timeoutMs,
      maxAttempts: spec.maxAttempts,
    },
    status: task.status,
    nodeId: task.nodeId,
    attempts: task.attempts,
    result: task.result === null ? null : { ...task.result },
    cancelRequested: task.cancelRequested,
    pendingReason: task.pendingReason,
    submittedAtMs: task.submittedAtMs,
    updatedAtMs: task.updatedAtMs,
  };
}

/** A task's logs as JSON. Throws nothing. */
export function taskLogsToJson(logs: TaskLogs): TaskLogsResponse {
  return { ...logs };
}

/** A VM as JSON. Throws nothing. */
export function vmToJson(vm: Vm): VmJson {
  const { publish, health, ...spec } = vm.spec;
  return {
    name: vm.name,
    spec: {
      ...spec,
      args: [...vm.spec.args],
      requiredFeatures: [...vm.spec.requiredFeatures],
      restart: { ...vm.spec.restart },
      ...(publish === undefined ? {} : { publish: publish.map((p) => ({ ...p })) }),
      ...(health === undefined ? {} : { health: { ...health } }),
    },
    desired: vm.desired,
    status: vm.status,
    nodeId: vm.nodeId,
    restarts: vm.restarts,
    lastError: vm.lastError,
    pendingReason: vm.pendingReason,
    createdAtMs: vm.createdAtMs,
    updatedAtMs: vm.updatedAtMs,
    ...(vm.diskNodeId === undefined ? {} : { diskNodeId: vm.diskNodeId }),
    ...(vm.migration === undefined ? {} : { migration: { ...vm.migration } }),
  };
}

/** Settings as JSON. Throws nothing. */
export function settingsToJson(settings: OrchestratorSettings): OrchestratorSettingsJson {
  return { placement: settings.placement };
}
